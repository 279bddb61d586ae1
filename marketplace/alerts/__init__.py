"""E-mail alerts: a provider who opted in (per category, for direct asks, for subscribed tags)
and is not online when a need matches them gets one mail per ``ALERTS_INTERVAL_SECONDS``
listing those needs, with a one-click unsubscribe link (docs/api.md, "E-mail alerts")."""
