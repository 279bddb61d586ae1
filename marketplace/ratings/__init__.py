"""Ratings feature."""
