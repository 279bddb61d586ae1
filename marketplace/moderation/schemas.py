from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from marketplace.moderation.models import REPORTABLE, Action, Reason, TargetType
from marketplace.schemas import Schema, text

_ID = {"strict": True, "validate": validate.Range(min=1, max=2**31 - 1)}


class ReportInSchema(Schema):
    target_type = fields.String(required=True, validate=validate.OneOf([t.value for t in REPORTABLE]))
    target_id = fields.Integer(load_default=None, allow_none=True, **_ID)
    handle = text(30, load_default=None, allow_none=True,
                  metadata={"description": "The provider's handle, for target_type profile."})
    reason = fields.String(required=True, validate=validate.OneOf([r.value for r in Reason]))
    details = text(1000, load_default="")

    @validates_schema
    def _target(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("target_type") == TargetType.PROFILE:
            if not data.get("handle"):
                raise ValidationError("Give the provider's handle.", "handle")
        elif data.get("target_type") and data.get("target_id") is None:
            raise ValidationError("Give the id of what you report.", "target_id")


class ReportOutSchema(Schema):
    id = fields.Integer()
    target_type = fields.String()
    target_id = fields.Integer()
    reason = fields.String()
    details = fields.String()
    status = fields.String()
    created_at = fields.AwareDateTime()


class AdminReportSchema(ReportOutSchema):
    reporter_id = fields.Integer()
    target_user_id = fields.Integer(allow_none=True)
    target = fields.Dict(metadata={"description": "The reported content as stored (also when "
                                   "hidden): its text, author, whether hidden, a link."})


class ActionInSchema(Schema):
    action = fields.String(required=True, validate=validate.OneOf(
        [a.value for a in Action if a != Action.DISMISS]))
    target_type = fields.String(required=True, validate=validate.OneOf([t.value for t in TargetType]))
    target_id = fields.Integer(required=True, **_ID)
    reason = text(1000, load_default="")
    report_id = fields.Integer(load_default=None, allow_none=True, **_ID)

    @validates_schema
    def _fits(self, data: dict[str, Any], **_: Any) -> None:
        account = data.get("action") in (Action.SUSPEND, Action.UNSUSPEND)
        if data.get("target_type") and account != (data["target_type"] == TargetType.USER):
            raise ValidationError("Suspend and unsuspend act on a user; hide and unhide on "
                                  "content.", "target_type")


class DismissInSchema(Schema):
    reason = text(1000, load_default="")


class LogOutSchema(Schema):
    id = fields.Integer()
    admin_id = fields.Integer(allow_none=True)
    action = fields.String()
    target_type = fields.String()
    target_id = fields.Integer()
    subject_user_id = fields.Integer(allow_none=True)
    report_id = fields.Integer(allow_none=True)
    reason = fields.String()
    at = fields.AwareDateTime()


class ActionOutSchema(Schema):
    log = fields.Nested(LogOutSchema)
    resolved_reports = fields.Integer()
