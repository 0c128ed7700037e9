"""Helpers shared by test tiers: the emulator's control API and the OpenAPI contract check."""
