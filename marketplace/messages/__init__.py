"""Messages feature."""
