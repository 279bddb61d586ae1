"""Reports and moderation: anyone signed in reports what they can see; admins work the queue
(dismiss, hide and unhide content, suspend and unsuspend accounts), and every action is
logged in ``moderation_log``."""
