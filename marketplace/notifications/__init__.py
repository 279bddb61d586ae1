"""Durable notifications and their live delivery."""
