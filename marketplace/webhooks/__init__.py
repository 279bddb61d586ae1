"""Webhooks: signed HTTP deliveries of a user's notifications to a server of theirs that
cannot hold a socket open (docs/api.md, "Webhooks"). Rows are written by the notification
outbox's store hook, in the notification's own transaction; a worker delivers them."""
