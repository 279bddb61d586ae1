"""Needs feature."""
