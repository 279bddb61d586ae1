"""Customers blocking providers: a blocked provider is never matched to, nor sees, their needs."""
