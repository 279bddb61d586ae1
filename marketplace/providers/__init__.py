"""Providers feature."""
