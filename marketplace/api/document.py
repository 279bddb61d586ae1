"""The finishing pass over the OpenAPI document flask-smorest builds (``MarketplaceApi.finish``):
what the decorators cannot say on their own, set in one place so every operation follows the
same conventions (docs/api.md, "Conventions").

- a stable ``operationId`` for every operation (``OPERATION_IDS``: clients' generated function
  names; renaming a view never changes them);
- every status an operation can answer, with the error schema: 400/413/415/422 where a body is
  read, 401 where a token is needed, 404 where the path names something, 422 where a query is
  read, 403/409/412 where the operation's rules say (``REFUSALS``), 429 where limited; nothing
  falls under ``default``;
- headers: ``X-Request-Id`` on every response, the rate-limit headers on every response of a
  limited operation, ``Idempotent-Replayed`` on idempotent ones, ``Link`` on lists, ``ETag`` on
  conditional reads, ``WWW-Authenticate`` on 401;
- nullable references that keep their type (``allOf: [$ref]`` + ``nullable``), output fields
  required where they always appear, query enums without ``null``;
- ``servers``, request-body examples and ``links`` for the main flow (need -> offers ->
  accept -> complete -> rating).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any

from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from marketplace.extensions import RATE_LIMIT_HEADERS, db
from marketplace.providers import services as providers
from marketplace.schemas import ONE_LOCATION_FORM

# ---------------------------------------------------------------------------------------------
# The tables
# ---------------------------------------------------------------------------------------------

#: endpoint -> operationId. Stable: a generated client's function names come from these.
OPERATION_IDS = {
    "accounts_api.register": "createUser",
    "accounts_api.verify": "confirmEmail",
    "accounts_api.resend_verification": "resendVerification",
    "accounts_api.request_password_reset": "requestPasswordReset",
    "accounts_api.confirm_password_reset": "confirmPasswordReset",
    "accounts_api.change_password": "changePassword",
    "accounts_api.change_email": "changeEmail",
    "accounts_api.confirm_email_change": "confirmEmailChange",
    "accounts_api.create_token_with_password": "createToken",
    "accounts_api.list_tokens": "listTokens",
    "accounts_api.revoke_token": "revokeToken",
    "accounts_api.me": "getMe",
    "accounts_api.update_me": "updateMe",
    "accounts_api.export_me": "exportMe",
    "accounts_api.erase_me": "deleteMe",
    "providers_api.categories": "listCategories",
    "providers_api.save_provider": "saveMyProvider",
    "providers_api.public_profile": "getProvider",
    "providers_api.provider_ratings": "listProviderRatings",
    "needs_api.create": "createNeed",
    "needs_api.list_mine": "listMyNeeds",
    "needs_api.feed": "getFeed",
    "needs_api.suggestions": "suggestNeedTags",
    "needs_api.show": "getNeed",
    "needs_api.update": "updateNeed",
    "needs_api.cancel": "cancelNeed",
    "needs_api.complete": "completeNeed",
    "offers_api.make": "createOffer",
    "offers_api.list_for_need": "listNeedOffers",
    "offers_api.mine": "listMyOffers",
    "offers_api.show": "getOffer",
    "offers_api.revise": "reviseOffer",
    "offers_api.withdraw": "withdrawOffer",
    "offers_api.accept": "acceptOffer",
    "messages_api.thread": "listMessages",
    "messages_api.send": "sendMessage",
    "ratings_api.rate": "rateNeed",
    "ratings_api.reply": "replyToRating",
    "notifications_api.list_after": "listNotifications",
    "notifications_api.mark_read": "markNotificationsRead",
    "geocoding_api.geocode": "geocode",
    "blocks_api.list_blocks": "listBlocks",
    "blocks_api.block": "blockProvider",
    "blocks_api.unblock": "unblockProvider",
    "contacts_api.list_mine": "listMyProviders",
    "contacts_api.show": "getMyProvider",
    "contacts_api.update": "updateMyProvider",
    "moderation_api.report": "createReport",
    "moderation_api.my_reports": "listMyReports",
    "moderation_api.admin_reports": "listOpenReports",
    "moderation_api.dismiss": "dismissReport",
    "moderation_api.act": "moderate",
    "moderation_api.moderation_log": "listModerationLog",
    "trends_api.trends": "getTrends",
    "alerts_api.get_alerts": "getMyAlerts",
    "alerts_api.save_alerts": "saveMyAlerts",
    "events_api.asyncapi": "getEventsAsyncApi",
    "events_api.event_schema": "getEventSchema",
    "media_api.put_avatar": "setMyAvatar",
    "media_api.delete_avatar": "deleteMyAvatar",
    "media_api.add_need_photo": "addNeedPhoto",
    "media_api.delete_need_photo": "deleteNeedPhoto",
    "media_api.get_need_photo": "getNeedPhoto",
    "media_api.get_need_photo_small": "getNeedPhotoSmall",
    "webhooks_api.create": "createWebhook",
    "webhooks_api.list_mine": "listWebhooks",
    "webhooks_api.show": "getWebhook",
    "webhooks_api.remove": "deleteWebhook",
    "webhooks_api.change": "updateWebhook",
    "webhooks_api.rotate_secret": "rotateWebhookSecret",
    "webhooks_api.list_deliveries": "listWebhookDeliveries",
    "webhooks_api.list_attempts": "listWebhookDeliveryAttempts",
    "webhooks_api.replay": "replayWebhookDelivery",
}

#: How an image upload is refused (its 413 is about the image, not the 256 KB of a JSON body).
UPLOAD: dict[int, str] = {
    413: "The image is over `MEDIA_MAX_MB` or `MEDIA_MAX_MEGAPIXELS`; `fields` names the field.",
    415: "The body is neither multipart/form-data nor an image/* type.",
    422: "The file is not a JPEG, PNG or WebP image (or is damaged), or the field is missing; "
         "`fields` names it."}

#: What an operation's own rules refuse beyond the statuses its shape implies, and why.
REFUSALS: dict[str, dict[int, str]] = {
    "createToken": {401: "Email or password is wrong.", 403: "The account is suspended.",
                    409: "You have the most tokens allowed; revoke one first."},
    "changePassword": {403: "`current_password` is not your password."},
    "changeEmail": {403: "`password` is not your password."},
    "deleteMe": {403: "`password` is not your password."},
    "saveMyProvider": {409: "That handle is taken."},
    "getFeed": {403: "You have no provider profile."},
    "listMyOffers": {403: "You have no provider profile."},
    "updateNeed": {403: "Only the need's customer edits it.",
                   409: "The need is not open (assigned, cancelled, completed or expired).",
                   412: "`If-Match` names another version of the need."},
    "cancelNeed": {403: "You may not cancel this need.",
                   409: "The need is in a state that cannot be cancelled."},
    "completeNeed": {403: "Only the customer completes a job.",
                     409: "The need is not assigned."},
    "createOffer": {403: "You have no provider profile (or it is hidden), or the need is yours.",
                    409: "You offered already, or the need no longer takes offers."},
    "reviseOffer": {403: "The offer is not yours.",
                    409: "The offer is not pending, or the need is not open.",
                    412: "`If-Match` names another version of the offer."},
    "withdrawOffer": {403: "The offer is not yours.",
                      409: "The offer is not pending, or the need is not open."},
    "acceptOffer": {403: "Only the need's customer accepts.",
                    409: "The offer is not pending, the need took another offer, or the "
                         "provider revised it since the `revision` you sent.",
                    412: "`If-Match` names another version of the offer."},
    "sendMessage": {409: "The thread is closed, or you blocked the provider."},
    "rateNeed": {403: "Only the customer rates a job.",
                 409: "The job is not completed, or is rated already."},
    "replyToRating": {403: "Only the rated provider replies.", 409: "You replied already."},
    "blockProvider": {403: "You cannot block yourself."},
    "createReport": {404: "You cannot see what you report (or it does not exist).",
                     409: "You already have an open report of it."},
    "listOpenReports": {404: "You are not an admin."},
    "listModerationLog": {404: "You are not an admin."},
    "dismissReport": {409: "The report is closed already."},
    "setMyAvatar": UPLOAD,
    "addNeedPhoto": {**UPLOAD, 403: "You can see the need but it is not yours.",
                     409: "The need is not open, or carries `NEED_PHOTOS_MAX` photos already."},
    "deleteNeedPhoto": {403: "You can see the need but it is not yours."},
    "replayWebhookDelivery": {409: "The webhook is disabled."},
    "moderate": {404: "You are not an admin, or no such target.",
                 409: "The target is in that state already."},
}

#: Lists paged by something other than a cursor that still send ``Link`` to the next page.
OTHER_PAGES = {"listNotifications"}
#: Reads answered with an ``ETag`` (and 304 to a matching ``If-None-Match``).
CONDITIONAL_READS = {"getNeed", "getOffer", "getProvider", "getNeedPhoto", "getNeedPhotoSmall"}
#: Updates that honour ``If-Match`` (412 when it names another version).
CONDITIONAL_UPDATES = {"reviseOffer", "acceptOffer", "updateNeed"}

#: Output fields that are not always there (every other output field is required).
SOMETIMES_ABSENT: dict[str, set[str]] = {
    "ErrorDetail": {"fields"},
}

#: One request body per operation that takes one, shown in the document.
EXAMPLES: dict[str, Any] = {
    "createUser": {"email": "ana@example.com", "password": "correct horse battery",
                   "name": "Ana Lima"},
    "createToken": {"email": "ana@example.com", "password": "correct horse battery",
                    "name": "my script"},
    "confirmEmail": {"token": "k9P0c2Vx3q"},
    "requestPasswordReset": {"email": "ana@example.com"},
    "confirmPasswordReset": {"token": "k9P0c2Vx3q", "password": "a new long password"},
    "changePassword": {"current_password": "correct horse battery",
                       "password": "a new long password"},
    "changeEmail": {"email": "ana.lima@example.org", "password": "correct horse battery"},
    "confirmEmailChange": {"token": "k9P0c2Vx3q"},
    "updateMe": {"name": "Ana Lima", "phone": "+1 512 555 0100"},
    "deleteMe": {"password": "correct horse battery"},
    "saveMyProvider": {"handle": "ana-caters", "display_name": "Ana Caters",
                       "bio": "Tacos for 10-200 people.", "categories": ["catering"],
                       "base": {"lat": 30.2672, "lon": -97.7431}, "radius_km": 25,
                       "active": True},
    "createNeed": {"title": "Tacos for 40 on Saturday", "description": "Vegetarian options.",
                   "category": "catering", "location": {"lat": 30.2672, "lon": -97.7431},
                   "radius_km": 15, "budget": {"amount": 60000, "currency": "USD"},
                   "needed_by": "2030-06-01T18:00:00Z"},
    "cancelNeed": {"reason": "We found someone."},
    "completeNeed": {},
    "createOffer": {"price": {"amount": 55000, "currency": "USD"},
                    "message": "Happy to; I can bring a vegetarian tray too."},
    "reviseOffer": {"price": {"amount": 52000, "currency": "USD"}},
    "updateNeed": {"description": "Vegetarian buffet for 30 now, and #dessert too",
                   "budget": {"amount": 52000, "currency": "USD"}},
    "withdrawOffer": {},
    "acceptOffer": {"revision": 1},
    "sendMessage": {"body": "Can you arrive by 5 pm?"},
    "rateNeed": {"stars": 5, "scores": {"quality": 5, "punctuality": 4, "communication": 5},
                 "comment": "Great food, on time."},
    "replyToRating": {"body": "Thank you, it was a pleasure."},
    "markNotificationsRead": {"up_to": 42},
    "blockProvider": {},
    "updateMyProvider": {"note": "Good with large groups.", "would_hire_again": True,
                         "favourite": True},
    "createReport": {"target_type": "offer", "target_id": 12, "reason": "spam"},
    "dismissReport": {"reason": "Not a problem."},
    "moderate": {"action": "hide", "target_type": "offer", "target_id": 12,
                 "reason": "Spam."},
    "resendVerification": {},
    "replayWebhookDelivery": {},
    "rotateWebhookSecret": {},
    "updateWebhook": {"enabled": True, "types": ["offer.received", "webhook.disabled"]},
    "saveMyAlerts": {"categories": ["catering", "cleaning"], "direct_asks": True, "tags": False},
    "createWebhook": {"url": "https://example.com/hooks/nearby",
                      "types": ["offer.received", "message.received"]},
}


def _body_id(field: str = "id") -> str:
    return f"$response.body#/{field}"


#: The main flow, as OpenAPI links from a response to the operations it leads to.
LINKS: dict[str, dict[str, dict[str, Any]]] = {
    "createNeed": {
        "getNeed": {"operationId": "getNeed", "parameters": {"need_id": _body_id()}},
        "listNeedOffers": {"operationId": "listNeedOffers",
                           "parameters": {"need_id": _body_id()}},
        "cancelNeed": {"operationId": "cancelNeed", "parameters": {"need_id": _body_id()}},
    },
    "createOffer": {
        "getOffer": {"operationId": "getOffer", "parameters": {"offer_id": _body_id()}},
        "acceptOffer": {"operationId": "acceptOffer", "parameters": {"offer_id": _body_id()},
                        "description": "Send the offer's `revision` with it."},
        "listMessages": {"operationId": "listMessages",
                         "parameters": {"offer_id": _body_id()}},
    },
    "acceptOffer": {
        "completeNeed": {"operationId": "completeNeed",
                         "parameters": {"need_id": _body_id("need_id")}},
        "getNeed": {"operationId": "getNeed", "parameters": {"need_id": _body_id("need_id")}},
    },
    "completeNeed": {
        "rateNeed": {"operationId": "rateNeed", "parameters": {"need_id": _body_id()}},
    },
    "rateNeed": {
        "replyToRating": {"operationId": "replyToRating",
                          "parameters": {"rating_id": _body_id()}},
        "getProvider": {"operationId": "getProvider",
                        "parameters": {"handle": _body_id("provider")}},
    },
}

# ---------------------------------------------------------------------------------------------
# Shared components
# ---------------------------------------------------------------------------------------------

REQUEST_ID_HEADER = "X-Request-Id"

HEADERS: dict[str, dict[str, Any]] = {
    REQUEST_ID_HEADER: {
        "description": "This request's id, in the server's log lines too: the one you sent "
                       "(1-128 of `A-Za-z0-9._:-`), else one the server made.",
        "schema": {"type": "string", "maxLength": 128}},
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request with the "
                       "same `Idempotency-Key`.",
        "schema": {"type": "string", "enum": ["true"]}},
    "Link": {
        "description": "`<url>; rel=\"next\"` when there is a next page (the same cursor as "
                     "`next_cursor`; for notifications, `after_seq` = `last_seq`, or "
                     "`after` = `last_id` when you page by id).",
        "schema": {"type": "string"}},
    "ETag": {"description": "This version of the resource; send it as `If-None-Match` (304 "
                          "when unchanged) or `If-Match` on updates.",
             "schema": {"type": "string"}},
    "WWW-Authenticate": {"description": "`Bearer realm=\"api\"` (with `error=\"invalid_token\"` "
                                      "when the token sent is not valid).",
                         "schema": {"type": "string"}},
    **{name: {"description": text, "schema": {"type": kind}}
       for name, kind, text in RATE_LIMIT_HEADERS},
}

PARAMETERS: dict[str, dict[str, Any]] = {
    "Idempotency-Key": {
        "name": "Idempotency-Key", "in": "header", "required": False,
        "description": "Repeat the request with the same key and body to get the first "
                       "answer again without the work being done twice (24 hours; docs/api.md).",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                   "pattern": "^[\\x20-\\x7e]+$"}},
    "If-None-Match": {
        "name": "If-None-Match", "in": "header", "required": False,
        "description": "An `ETag` you hold: 304 with no body when it is still current.",
        "schema": {"type": "string"}},
    "If-Match": {
        "name": "If-Match", "in": "header", "required": False,
        "description": "The `ETag` you read: the change is made only if it is still current "
                       "(412 otherwise).",
        "schema": {"type": "string"}},
}

#: status -> (component name, description, error schema, its ``code``). Each status has an
#: error schema of its own (the one shape, with its status and code fixed), so a generated
#: client receives a 404 and a 409 as different types.
STATUSES = {
    304: ("NOT_MODIFIED", "Not modified: the `ETag` you sent is current.", None, None),
    400: ("BAD_REQUEST", "The body is not valid JSON.", "BadRequestError", "bad_request"),
    401: ("UNAUTHORIZED", "No valid API token was sent.", "UnauthorizedError", "unauthorized"),
    403: ("FORBIDDEN", "You are known but may not do this.", "ForbiddenError", "forbidden"),
    404: ("NOT_FOUND", "It does not exist, or you may not know it exists.", "NotFoundError",
          "not_found"),
    409: ("CONFLICT", "The thing is in the wrong state for this; the message says why.",
          "ConflictError", "conflict"),
    412: ("PRECONDITION_FAILED", "`If-Match` names a version that is no longer current.",
          "PreconditionFailedError", "precondition_failed"),
    413: ("PAYLOAD_TOO_LARGE", "The body is over 256 KB.", "PayloadTooLargeError",
          "payload_too_large"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "The body is not sent as `application/json`.",
          "UnsupportedMediaTypeError", "unsupported_media_type"),
    422: ("UNPROCESSABLE_ENTITY", "Input was at fault; `fields` names each bad field.",
          "ValidationError", "validation_error"),
    429: ("TOO_MANY_REQUESTS", "Over a rate limit; wait `Retry-After` seconds.",
          "TooManyRequestsError", "too_many_requests"),
    503: ("SERVICE_UNAVAILABLE", "The database cannot be reached just now; retry after "
          "`Retry-After` seconds (a creating POST with its `Idempotency-Key`, which is never "
          "run twice).", "ServiceUnavailableError", "service_unavailable"),
}


def _error_schema(status: int, code: str) -> dict[str, Any]:
    return {
        "type": "object", "required": ["error"],
        "description": f"The error shape of every {status} (docs/api.md, \"Errors\").",
        "properties": {"error": {
            "type": "object", "required": ["status", "code", "message"],
            "properties": {
                "status": {"type": "integer", "enum": [status]},
                "code": {"type": "string", "enum": [code]},
                "message": {"type": "string"},
                "fields": {"type": "object", "description": "Each bad input field (nested "
                           "objects nest), with its messages."}}}}}

HTTP_METHODS = ("get", "put", "post", "patch", "delete")


def _error(status: int) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{STATUSES[status][2]}"}


def _header(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def _components(doc: dict[str, Any]) -> None:
    components = doc.setdefault("components", {})
    components.setdefault("headers", {}).update(copy.deepcopy(HEADERS))
    responses = components.setdefault("responses", {})
    responses.pop("DEFAULT_ERROR", None)
    limit_headers = {name: _header(name) for name, _kind, _text in RATE_LIMIT_HEADERS}
    schemas = components.setdefault("schemas", {})
    for status, (name, description, schema, code) in STATUSES.items():
        response: dict[str, Any] = {"description": description,
                                    "headers": {REQUEST_ID_HEADER: _header(REQUEST_ID_HEADER)}}
        if schema is not None and code is not None:
            schemas[schema] = _error_schema(status, code)
            response["content"] = {"application/json": {"schema": _error(status)}}
        else:
            response["headers"]["ETag"] = _header("ETag")
        if status == 401:
            response["headers"]["WWW-Authenticate"] = _header("WWW-Authenticate")
        if status == 429:
            response["headers"].update(limit_headers)
        if status == 503:
            response["headers"]["Retry-After"] = _header("Retry-After")
        responses[name] = response


# ---------------------------------------------------------------------------------------------
# Per operation
# ---------------------------------------------------------------------------------------------


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc.get("paths", {}).items():
        for method in HTTP_METHODS:
            if method in item:
                yield path, method, item[method]


def _rule_path(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


def _endpoints() -> dict[tuple[str, str], str]:
    """(method, documented path) -> endpoint, from the app's url map."""
    found = {}
    for rule in current_app.url_map.iter_rules():
        for method in rule.methods or ():
            found[(method.lower(), _rule_path(rule.rule))] = rule.endpoint
    return found


def _ref(status: int) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{STATUSES[status][0]}"}


def _statuses(op: dict[str, Any], path_item: dict[str, Any], public: bool,
              limited: bool) -> set[int]:
    statuses = {503}  # every operation reads the database
    params = [*path_item.get("parameters", []), *op.get("parameters", [])]
    if "requestBody" in op:
        statuses |= {400, 413, 415, 422}
    if any(p.get("in") == "query" for p in params):
        statuses.add(422)
    if any(p.get("in") == "path" for p in params):
        statuses.add(404)
    if not public:
        statuses.add(401)
    if limited:
        statuses.add(429)
    return statuses


def _finish_operation(path: str, method: str, op: dict[str, Any], path_item: dict[str, Any],
                      op_id: str, doc: dict[str, Any]) -> None:
    op["operationId"] = op_id
    responses = op["responses"]
    responses.pop("default", None)
    limited = "429" in responses
    public = op.get("security") == []
    idempotent = any(p.get("name") == "Idempotency-Key" for p in op.get("parameters", []))
    statuses = _statuses(op, path_item, public, limited)
    if idempotent:
        statuses |= {409, 422}
    refusals = REFUSALS.get(op_id, {})
    statuses |= set(refusals)
    if op_id in CONDITIONAL_READS:
        statuses.add(304)
        op.setdefault("parameters", []).append(copy.deepcopy(PARAMETERS["If-None-Match"]))
    if op_id in CONDITIONAL_UPDATES:
        statuses.add(412)
        op.setdefault("parameters", []).append(copy.deepcopy(PARAMETERS["If-Match"]))
    for status in sorted(statuses):
        key = str(status)
        if status in refusals:
            responses[key] = {"description": refusals[status],
                              "headers": {REQUEST_ID_HEADER: _header(REQUEST_ID_HEADER)}}
            if status != 304:
                responses[key]["content"] = {"application/json": {"schema": _error(status)}}
            if status == 401:
                responses[key]["headers"]["WWW-Authenticate"] = _header("WWW-Authenticate")
        elif key not in responses or "$ref" in responses[key]:
            responses[key] = _ref(status)
        elif status != 304:  # described by the view (alt_response): the schema and headers
            responses[key].setdefault("content", {"application/json": {"schema": _error(status)}})
            responses[key].setdefault("headers", {REQUEST_ID_HEADER: _header(REQUEST_ID_HEADER)})
    for key, response in responses.items():
        if not key.startswith("2"):
            continue
        headers = response.setdefault("headers", {})
        headers[REQUEST_ID_HEADER] = _header(REQUEST_ID_HEADER)
        if limited:
            headers.update({name: _header(name) for name, _k, _t in RATE_LIMIT_HEADERS
                            if name != "Retry-After"})
        if idempotent:
            headers["Idempotent-Replayed"] = _header("Idempotent-Replayed")
        if op_id in CONDITIONAL_READS or op_id in CONDITIONAL_UPDATES:
            headers["ETag"] = _header("ETag")
        schema = response.get("content", {}).get("application/json", {}).get("schema", {})
        if _is_page(schema, doc) or op_id in OTHER_PAGES:
            headers["Link"] = _header("Link")
        if op_id in LINKS:
            response["links"] = copy.deepcopy(LINKS[op_id])
    for param in op.get("parameters", []):
        if param.get("in") == "query":
            _no_null(param["schema"])
    body = op.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None and op_id in EXAMPLES:
        body["example"] = copy.deepcopy(EXAMPLES[op_id])


def _is_page(schema: dict[str, Any], doc: dict[str, Any]) -> bool:
    name = schema.get("$ref", "").removeprefix("#/components/schemas/")
    props = doc["components"]["schemas"].get(name, {}).get("properties", {})
    return "items" in props and "next_cursor" in props


def _no_null(schema: dict[str, Any]) -> None:
    """A query string cannot carry null: leaving the parameter out is how to say 'none'."""
    schema.pop("nullable", None)
    if schema.get("default", 0) is None:
        schema.pop("default")
    if "enum" in schema:
        schema["enum"] = [v for v in schema["enum"] if v is not None]


# ---------------------------------------------------------------------------------------------
# Schemas
# ---------------------------------------------------------------------------------------------


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _typed_nullable_refs(doc: dict[str, Any]) -> None:
    """apispec writes a nullable reference as ``anyOf: [{type: object, nullable}, {$ref}]``,
    which any object satisfies. OpenAPI 3.0's ``nullable`` does not reach through ``$ref`` or
    ``allOf``, so the null branch is narrowed to null alone (``enum: [null]``): a value is then
    null or the referenced type."""
    for node in list(_walk(doc)):
        if node.get("nullable") and "enum" in node and None not in node["enum"]:
            node["enum"].append(None)  # 3.0.3: a nullable enum lists null
        branches = node.get("anyOf")
        if not isinstance(branches, list) or len(branches) != 2:
            continue
        refs = [b for b in branches if "$ref" in b]
        nulls = [b for b in branches if b.get("nullable") and "$ref" not in b]
        if len(refs) == 1 and len(nulls) == 1:
            node["anyOf"] = [refs[0], {"type": "object", "nullable": True, "enum": [None]}]


def _refs(node: Any) -> set[str]:
    return {n["$ref"].removeprefix("#/components/schemas/") for n in _walk(node)
            if isinstance(n.get("$ref"), str) and n["$ref"].startswith("#/components/schemas/")}


def _closure(names: set[str], schemas: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen or name not in schemas:
            continue
        seen.add(name)
        todo.extend(_refs(schemas[name]))
    return seen


def _required_outputs(doc: dict[str, Any]) -> None:
    """Every field of an output-only schema is always there, unless ``SOMETIMES_ABSENT``."""
    schemas = doc["components"]["schemas"]
    inputs: set[str] = set()
    outputs: set[str] = set()
    for _path, _method, op in _operations(doc):
        inputs |= _refs(op.get("requestBody", {}))
        outputs |= _refs(op.get("responses", {}))
    outputs |= _refs(doc["components"].get("responses", {}))
    for name in _closure(outputs, schemas) - _closure(inputs, schemas):
        props = schemas[name].get("properties")
        if props:
            absent = SOMETIMES_ABSENT.get(name, set())
            schemas[name]["required"] = sorted(set(props) - absent)


def _both(action: dict[str, Any], target_type: dict[str, Any]) -> dict[str, Any]:
    return {"required": ["action", "target_type"],
            "properties": {"action": action, "target_type": target_type}}


#: ``ActionInSchema._fits``: suspend/unsuspend act on a user, hide/unhide on content.
ACTION_FITS_TARGET = {"anyOf": [
    _both({"enum": ["suspend", "unsuspend"]}, {"not": {"enum": ["user"]}}),
    _both({"enum": ["hide", "unhide"]}, {"enum": ["user"]}),
]}
_PROFILE = {"enum": ["profile"]}
#: ``ReportInSchema._target``: a profile is named by a handle, anything else by target_id.
REPORT_NAMES_TARGET = {"anyOf": [
    {"required": ["target_type"], "properties": {"target_type": _PROFILE},
     "not": {"required": ["handle"]}},
    {"required": ["target_type", "handle"],
     "properties": {"target_type": _PROFILE,
                    "handle": {"type": "string", "nullable": True, "pattern": "^\\s*$"}}},
    {"required": ["target_type", "handle"],
     "properties": {"target_type": _PROFILE, "handle": {"nullable": True, "enum": [None]}}},
    {"required": ["target_type"], "properties": {"target_type": {"not": _PROFILE}},
     "not": {"required": ["target_id"]}},
    {"required": ["target_type", "target_id"],
     "properties": {"target_type": {"not": _PROFILE},
                    "target_id": {"nullable": True, "enum": [None]}}},
]}


def _server_rules(doc: dict[str, Any]) -> None:
    """Rules marshmallow checks in code, said in the document: one form of location, exactly
    one of ``ids``/``up_to``, the category slugs (a fixed list, read from the database)."""
    schemas = doc["components"]["schemas"]
    schemas["LocationIn"]["not"] = copy.deepcopy(ONE_LOCATION_FORM)
    schemas["MarkRead"].update(minProperties=1, maxProperties=1)
    schemas["ActionIn"]["not"] = copy.deepcopy(ACTION_FITS_TARGET)
    schemas["ReportIn"]["not"] = copy.deepcopy(REPORT_NAMES_TARGET)
    try:
        slugs = sorted(c.slug for c in providers.all_categories())
    except SQLAlchemyError:  # a database without its tables (never a deployment)
        db.session.rollback()
        return
    schemas["NeedIn"]["properties"]["category"]["enum"] = slugs
    schemas["ProviderIn"]["properties"]["categories"]["items"]["enum"] = slugs


# ---------------------------------------------------------------------------------------------


def finish(doc: dict[str, Any]) -> dict[str, Any]:
    """The finished document (``doc`` as flask-smorest built it is left as it was)."""
    doc = copy.deepcopy(doc)
    doc["servers"] = [{"url": current_app.config.get("PUBLIC_URL") or "/",
                       "description": "This deployment (PUBLIC_URL)."}]
    _components(doc)
    endpoints = _endpoints()
    for path, method, op in _operations(doc):
        endpoint = endpoints.get((method, path), "")
        op_id = OPERATION_IDS.get(endpoint) or _camel(endpoint.rpartition(".")[2])
        _finish_operation(path, method, op, doc["paths"][path], op_id, doc)
    _server_rules(doc)
    _typed_nullable_refs(doc)
    _required_outputs(doc)
    return doc


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
