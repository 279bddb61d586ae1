"""JSON routes: reporting content, and the admin queue (404 for anyone but admins)."""

from typing import Any

from flask import g

from marketplace.api.auth import auth_required
from marketplace.api.base import Blueprint
from marketplace.moderation import services
from marketplace.moderation.schemas import (
    ActionInSchema,
    ActionOutSchema,
    AdminReportSchema,
    DismissInSchema,
    LogOutSchema,
    ReportInSchema,
    ReportOutSchema,
)
from marketplace.pagination import OffsetPageArgs, offset_page, page, page_of

blp = Blueprint("moderation_api", __name__, url_prefix="/api/v1",
                description="Reports and moderation")


@blp.route("/reports", methods=["POST"])
@auth_required
@blp.limited("RATE_LIMIT_REPORTS")
@blp.arguments(ReportInSchema)
@blp.response(201, ReportOutSchema)
@blp.alt_response(404, description="You cannot see what you report (or it does not exist).")
@blp.alt_response(409, description="You already have an open report of it.")
def report(data: dict[str, Any]) -> Any:
    """Report a need, offer, message, rating (by id) or provider profile (by handle) that you
    can see, with a reason; one open report per target."""
    return services.report(g.user, data)


@blp.route("/me/reports", methods=["GET"])
@auth_required
@blp.arguments(OffsetPageArgs, location="query")
@blp.response(200, page_of(ReportOutSchema))
def my_reports(args: dict[str, Any]) -> Any:
    """The reports you filed and where each stands."""
    return page(*offset_page(list(services.mine(g.user)), args["cursor"], args["limit"]))


@blp.route("/admin/reports", methods=["GET"])
@auth_required
@blp.arguments(OffsetPageArgs, location="query")
@blp.response(200, page_of(AdminReportSchema))
@blp.alt_response(404, description="You are not an admin.")
def admin_reports(args: dict[str, Any]) -> Any:
    """Admins: the open reports, newest first, with the reported content as stored."""
    return page(*offset_page(list(services.queue(g.user)), args["cursor"], args["limit"]))


@blp.route("/admin/reports/<int:report_id>/dismiss", methods=["POST"])
@auth_required
@blp.arguments(DismissInSchema, required=False)
@blp.response(200, LogOutSchema)
@blp.alt_response(404, description="You are not an admin, or no such report.")
def dismiss(data: dict[str, Any], report_id: int) -> Any:
    """Admins: dismiss an open report (logged)."""
    return services.dismiss(g.user, report_id, (data or {}).get("reason", ""))


@blp.route("/admin/actions", methods=["POST"])
@auth_required
@blp.arguments(ActionInSchema)
@blp.response(200, ActionOutSchema)
@blp.alt_response(404, description="You are not an admin, or no such target.")
def act(data: dict[str, Any]) -> Any:
    """Admins: hide or unhide content (need, offer, message, rating, profile by id), suspend
    or unsuspend an account (user by id). Logged; hiding or suspending closes the target's
    open reports. Suspending ends the account's sessions, live connections and token use at
    once."""
    return services.act(g.user, data)


@blp.route("/admin/log", methods=["GET"])
@auth_required
@blp.arguments(OffsetPageArgs, location="query")
@blp.response(200, page_of(LogOutSchema))
@blp.alt_response(404, description="You are not an admin.")
def moderation_log(args: dict[str, Any]) -> Any:
    """Admins: the moderation log, newest first."""
    return page(*offset_page(list(services.log(g.user)), args["cursor"], args["limit"]))
