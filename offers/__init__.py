"""Perks, offer tables, messages, contact policy and the decision engine (no HTTP here)."""
