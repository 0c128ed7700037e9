"""Keeping Pleo's master data the same as the accounting system's."""
