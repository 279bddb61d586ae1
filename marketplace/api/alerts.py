"""JSON routes: the signed-in provider's e-mail alert settings."""

from typing import Any

from flask import g

from marketplace.alerts import services
from marketplace.alerts.schemas import AlertSettingsSchema
from marketplace.api.auth import auth_required
from marketplace.api.base import Blueprint

blp = Blueprint("alerts_api", __name__, url_prefix="/api/v1", description="E-mail alerts")


@blp.route("/me/alerts", methods=["GET"])
@auth_required
@blp.response(200, AlertSettingsSchema)
def get_alerts() -> Any:
    """What you are mailed about while you are not online (everything is off until you opt in)."""
    return services.settings(g.user)


@blp.route("/me/alerts", methods=["PUT"])
@auth_required
@blp.arguments(AlertSettingsSchema, required=False)  # every field has a default: {} is all off
@blp.response(200, AlertSettingsSchema)
def save_alerts(data: dict[str, Any]) -> Any:
    """Replace your alert settings. At most one alert mail per few minutes (ALERTS_INTERVAL),
    listing the needs that matched you while no page or client of yours was connected; each
    mail has a one-click unsubscribe link."""
    return services.save(g.user, data)
