"""Images people upload (avatars, photos on needs): read by content, re-encoded without
metadata, stored as rows keyed by the digest of what is served."""
