"""Profiles, features, segmentation models and their human names (no HTTP here)."""
