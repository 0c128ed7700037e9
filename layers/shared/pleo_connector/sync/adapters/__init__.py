"""Adapters read one accounting system each; `base` holds the contract they share."""
