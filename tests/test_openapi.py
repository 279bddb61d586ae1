"""The OpenAPI document at /api/v1/openapi.json and the docs page at /api/v1/docs.

The document must be valid OpenAPI 3, describe every /api/v1 route the app really has, say
truthfully which operations need the bearer token, and never forbid a request the server accepts
(checked by validating accepted bodies — the baselines ``test_bad_input`` proves the server takes,
nulls, boundary values, required-only bodies — against the documented request schemas). The docs
page must work offline: Swagger UI from /static/vendor/swagger-ui/, no outside host.

These tests read and never write, so they use the session's migrated ``backend_app`` directly
(both backends) instead of the per-test ``app`` that empties the database afterwards.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import error_of
from flask import Flask
from marshmallow import Schema, validate
from marshmallow import fields as mf
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator
from openapi_spec_validator import validate as validate_spec
from pages import Node, dom, links, scripts
from test_bad_input import (
    API,
    ENDPOINTS,
    PUBLIC,
    Endpoint,
    _set,
    api_operations,
    resolve_times,
)

SPEC_URL = f"{API}/openapi.json"
DOCS_URL = f"{API}/docs"
SWAGGER_ASSETS = "/static/vendor/swagger-ui/"
HTTP_METHODS = ("get", "put", "post", "patch", "delete")
OWN_ROUTES = {f"GET {SPEC_URL}", f"GET {DOCS_URL}"}  # the document and its page, not operations
PUBLIC_OPERATIONS = {
    ("post", f"{API}/users"), ("post", f"{API}/tokens"), ("get", f"{API}/categories"),
    ("post", f"{API}/verification"), ("post", f"{API}/password-reset"),
    ("post", f"{API}/password-reset/confirm"), ("post", f"{API}/email-change/confirm"),
    ("get", f"{API}/providers/{{handle}}"), ("get", f"{API}/providers/{{handle}}/ratings"),
    ("get", f"{API}/events/asyncapi.yaml"), ("get", f"{API}/events/schemas/{{event}}.json"),
}
BODY_ENDPOINTS = [ep for ep in ENDPOINTS if ep.bodies]
QUERY_ENDPOINTS = [ep for ep in ENDPOINTS if ep.query is not None]


@pytest.fixture
def spec(backend_app: Flask) -> dict[str, Any]:
    response = backend_app.test_client().get(SPEC_URL)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def template(rule: str) -> str:
    """``/needs/<int:need_id>`` -> ``/needs/{need_id}``."""
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule)


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield method, path, item[method]


def operation(spec: dict[str, Any], ep: Endpoint) -> dict[str, Any]:
    return spec["paths"][template(ep.rule)][ep.method.lower()]


def deref(node: Any, spec: dict[str, Any]) -> Any:
    """The schema with every local ``$ref`` inlined (the request schemas are not recursive)."""
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].removeprefix("#/components/schemas/")
            return deref(spec["components"]["schemas"][name], spec)
        return {key: deref(value, spec) for key, value in node.items()}
    if isinstance(node, list):
        return [deref(value, spec) for value in node]
    return node


def request_schema(spec: dict[str, Any], ep: Endpoint) -> dict[str, Any]:
    body = operation(spec, ep)["requestBody"]
    return deref(body["content"]["application/json"]["schema"], spec)


def _object_schema(doc: dict[str, Any]) -> dict[str, Any]:
    """apispec documents a nullable nested object as ``anyOf: [<object>, {nullable}]``."""
    for key in ("anyOf", "allOf", "oneOf"):
        for branch in doc.get(key, []):
            if "properties" in branch:
                return branch
    return doc


def _nullable(doc: dict[str, Any]) -> bool:
    return bool(doc.get("nullable")) or any(
        branch.get("nullable") for key in ("anyOf", "oneOf") for branch in doc.get(key, []))


# --------------------------------------------------------------------------------------------
# The document as a whole
# --------------------------------------------------------------------------------------------


def test_the_document_is_valid_openapi_3(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.")
    validate_spec(spec)  # raises OpenAPIValidationError with the first problem found
    assert spec["info"]["title"] and spec["info"]["version"] == "v1"


def test_every_api_route_is_documented_and_nothing_else(backend_app: Flask,
                                                        spec: dict[str, Any]) -> None:
    routed = {(key.split(" ", 1)[0].lower(), template(key.split(" ", 1)[1]))
              for key in api_operations(backend_app) if key not in OWN_ROUTES}
    documented = {(method, path) for method, path, _op in operations(spec)}
    assert routed - documented == set(), "routes missing from the OpenAPI document"
    assert documented - routed == set(), "documented operations the app does not have"
    for method, path, op in operations(spec):
        item_params = spec["paths"][path].get("parameters", [])
        in_path = {p["name"] for p in [*item_params, *op.get("parameters", [])] if p["in"] == "path"}
        assert in_path == set(re.findall(r"{(\w+)}", path)), (method, path)
        assert op.get("summary") or op.get("description"), f"{method} {path} is undescribed"


def test_bearer_auth_is_the_default_security(spec: dict[str, Any]) -> None:
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http" and scheme["scheme"].lower() == "bearer"
    assert spec["security"] == [{"bearerAuth": []}]


def test_public_operations_and_only_they_are_marked_security_empty(spec: dict[str, Any]) -> None:
    public = {(method, path) for method, path, op in operations(spec) if op.get("security") == []}
    assert public == PUBLIC_OPERATIONS
    for method, path, op in operations(spec):
        if (method, path) not in PUBLIC_OPERATIONS and "security" in op:
            assert {"bearerAuth": []} in op["security"], (method, path)
    # the table of test_bad_input agrees about which operations are public
    assert {(k.split()[0].lower(), template(k.split()[1])) for k in PUBLIC - OWN_ROUTES} == public


def test_documented_security_matches_what_the_server_does(backend_app: Flask,
                                                          spec: dict[str, Any]) -> None:
    """Anonymous calls: 401 exactly where the document says a token is needed."""
    client = backend_app.test_client()
    for method, path, op in operations(spec):
        url = re.sub(r"{handle}", "no-such-handle", re.sub(r"{\w+_id}", "999999", path))
        response = client.open(url, method=method.upper(), json={})
        if (method, path) in PUBLIC_OPERATIONS:
            assert response.status_code != 401, (method, path, response.get_json())
        else:
            assert op.get("security", spec["security"]) == [{"bearerAuth": []}]
            assert response.status_code == 401, (method, path, response.get_json())
            error_of(response)


# --------------------------------------------------------------------------------------------
# Request bodies and query parameters: the document is never stricter than the server
# --------------------------------------------------------------------------------------------


def _input_fields(schema: Schema) -> dict[str, mf.Field]:
    return {f.data_key or name: f for name, f in schema.load_fields.items()}


def _compare(doc: dict[str, Any], schema: Schema, where: str) -> Iterator[str]:
    """Differences between a documented object schema and the marshmallow schema it came from."""
    doc = _object_schema(doc)
    fields = _input_fields(schema)
    if set(doc.get("properties", {})) != set(fields):
        yield f"{where}: documents {sorted(doc.get('properties', {}))}, server takes {sorted(fields)}"
    required = {name for name, f in fields.items() if f.required}
    if set(doc.get("required", [])) != required:
        yield f"{where}: documents required {sorted(doc.get('required', []))}, server {sorted(required)}"
    if doc.get("additionalProperties") is not False:
        yield f"{where}: the server refuses unknown fields, the document allows them"
    for name, f in fields.items():
        prop = doc.get("properties", {}).get(name, {})
        if f.allow_none and not _nullable(prop):
            yield f"{where}.{name}: the server takes null, the document does not say nullable"
        if isinstance(f, mf.Nested) and not f.many:
            yield from _compare(prop, f.schema, f"{where}.{name}")


@pytest.mark.parametrize("key", [ep.key for ep in BODY_ENDPOINTS])
def test_request_body_schema_is_the_one_the_server_uses(spec: dict[str, Any], key: str) -> None:
    ep = next(ep for ep in BODY_ENDPOINTS if ep.key == key)
    problems = list(_compare(request_schema(spec, ep), ep.schema(), ep.schema.__name__))
    assert not problems, "\n".join(problems)


def test_need_in_requires_exactly_the_core_fields(spec: dict[str, Any]) -> None:
    ep = next(ep for ep in BODY_ENDPOINTS if ep.key == f"POST {API}/needs")
    doc = request_schema(spec, ep)
    assert set(doc["required"]) == {"title", "category", "location", "radius_km", "budget"}
    assert set(doc["properties"]["budget"]["required"]) == {"amount", "currency"}
    assert doc["properties"]["budget"]["properties"]["amount"]["type"] == "integer"
    assert doc["properties"]["location"].get("required", []) == []  # {lat, lon} or {query}


def _good_values(f: mf.Field) -> Iterator[tuple[str, Any]]:
    """Values at the edges of what the marshmallow field accepts."""
    if f.allow_none:
        yield "null", None
    for v in f.validators:
        if isinstance(v, validate.Range):
            for label, bound in (("min", v.min), ("max", v.max)):
                if bound is not None:
                    yield label, bound
        if isinstance(v, validate.Length) and isinstance(f, mf.String):
            if v.max is not None:
                yield "longest", "a" * v.max
            if v.min:
                yield "shortest", "a" * v.min
        if isinstance(v, validate.OneOf):
            for choice in v.choices:
                yield f"choice-{choice}", choice
    if isinstance(f, mf.Boolean):
        yield "false", False
    if isinstance(f, mf.DateTime):
        yield "naive", "2030-01-01T10:00:00"


def _walk(schema: Schema, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...],
                                                                           mf.Field]]:
    for name, f in _input_fields(schema).items():
        yield (*prefix, name), f
        if isinstance(f, mf.Nested) and not f.many:
            yield from _walk(f.schema, (*prefix, name))


#: Fields the server checks against stored data after the schema (a category must be one of
#: the stored slugs, which the document lists as an enum): edge values of the marshmallow field
#: are not bodies the server accepts.
CHECKED_AGAINST_DATA = {("category",)}


def accepted_bodies(ep: Endpoint) -> Iterator[tuple[str, Any]]:
    """Bodies the server's schema accepts: the baselines, their required-only cut, and each
    field at the edges of its range, null where allowed."""
    schema = ep.schema()
    baselines = [resolve_times(body) for body in ep.bodies]
    for i, body in enumerate(baselines):
        yield f"baseline-{i}", body
        fields = _input_fields(schema)
        required_only = {k: v for k, v in body.items() if fields[k].required}
        if not schema.validate(required_only):
            yield f"required-only-{i}", required_only
    for path, f in _walk(schema):
        if path in CHECKED_AGAINST_DATA:
            continue
        for label, value in _good_values(f):
            for i, body in enumerate(baselines):
                candidate = _set(body, path, value)
                if not schema.validate(candidate):
                    yield f"{'.'.join(path)}:{label}:{i}", candidate
                    break


@pytest.mark.parametrize("key", [ep.key for ep in BODY_ENDPOINTS])
def test_request_body_schema_accepts_every_body_the_server_accepts(spec: dict[str, Any],
                                                                  key: str) -> None:
    ep = next(ep for ep in BODY_ENDPOINTS if ep.key == key)
    validator = OAS30WriteValidator(request_schema(spec, ep))
    problems = []
    seen = 0
    for label, body in accepted_bodies(ep):
        assert not ep.schema().validate(body), (label, body)
        seen += 1
        problems += [f"{label}: {e.message}" for e in validator.iter_errors(body)]
    assert seen >= len(ep.bodies)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("key", [ep.key for ep in BODY_ENDPOINTS])
def test_request_body_is_required_only_when_the_server_needs_one(spec: dict[str, Any],
                                                                 key: str) -> None:
    ep = next(ep for ep in BODY_ENDPOINTS if ep.key == key)
    server_needs_body = bool(ep.schema().validate({}))
    assert operation(spec, ep)["requestBody"].get("required", False) == server_needs_body


def test_the_server_really_takes_those_requests_without_a_body(client: Any,
                                                               make_user: Any) -> None:
    """What the test above relies on, shown on the harmless one: PATCH /me with no body."""
    person = make_user()
    response = person.patch(f"{API}/me")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["name"] == person.user.name


@pytest.mark.parametrize("key", [ep.key for ep in QUERY_ENDPOINTS])
def test_query_parameters_are_documented(spec: dict[str, Any], key: str) -> None:
    ep = next(ep for ep in QUERY_ENDPOINTS if ep.key == key)
    documented = {p["name"]: p for p in operation(spec, ep).get("parameters", [])
                  if p["in"] == "query"}
    fields = _input_fields(ep.schema())
    assert set(documented) == set(fields)
    for name, f in fields.items():
        assert documented[name].get("required", False) == f.required, name


# --------------------------------------------------------------------------------------------
# Responses: the documented error shape is the one the server sends
# --------------------------------------------------------------------------------------------


def test_documented_error_schema_describes_real_errors(backend_app: Flask,
                                                       spec: dict[str, Any]) -> None:
    client = backend_app.test_client()
    op = spec["paths"][f"{API}/users"]["post"]
    responses = spec["components"]["responses"]
    real = client.post(f"{API}/users", json={})  # 422 naming the missing fields
    assert real.status_code == 422 and error_of(real)["fields"]
    assert "default" not in op["responses"]  # every status is named, none falls under default
    for name in ("422",):
        ref = op["responses"][name]["$ref"].removeprefix("#/components/responses/")
        schema = deref(responses[ref]["content"]["application/json"]["schema"], spec)
        errors = [e.message for e in OAS30ReadValidator(schema).iter_errors(real.get_json())]
        assert not errors, (name, errors)


def test_every_json_body_documents_the_415(backend_app: Flask, spec: dict[str, Any]) -> None:
    """Each operation taking a JSON body says it may answer 415 with the error shape, and it
    really does (a text/plain body), so clients know to send Content-Type: application/json."""
    client = backend_app.test_client()
    for ep in BODY_ENDPOINTS:
        op = spec["paths"][template(ep.rule)][ep.method.lower()]
        assert "application/json" in op["requestBody"]["content"], ep.key
        ref = op["responses"]["415"]["$ref"].removeprefix("#/components/responses/")
        schema = spec["components"]["responses"][ref]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/UnsupportedMediaTypeError"}, ep.key
    real = client.post(f"{API}/users", data="{}", content_type="text/plain")
    assert real.status_code == 415 and error_of(real)["code"] == "unsupported_media_type"
    schema = deref({"$ref": "#/components/schemas/UnsupportedMediaTypeError"}, spec)
    assert not list(OAS30ReadValidator(schema).iter_errors(real.get_json()))


# --------------------------------------------------------------------------------------------
# The docs page
# --------------------------------------------------------------------------------------------


@pytest.fixture
def docs_page(backend_app: Flask) -> tuple[str, Node]:
    response = backend_app.test_client().get(DOCS_URL)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    return html, dom(html)


def test_docs_page_loads_swagger_ui_from_this_server(backend_app: Flask,
                                                     docs_page: tuple[str, Node]) -> None:
    html, page = docs_page
    urls = [url for url in links(page) if not url.startswith("data:")]  # data: fetches nothing
    assert urls, "the docs page references no assets"
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), f"not served by us: {url}"
        assert url.startswith(SWAGGER_ASSETS), url
    # inline scripts and styles must not pull anything from elsewhere either
    assert not re.search(r"(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html.replace(SPEC_URL, "")), (
        "the docs page names an outside host")
    assert SPEC_URL in html
    client = backend_app.test_client()
    kinds: dict[str, set[str]] = {}  # by file extension
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, f"{url} is missing: run `make` (it copies it from npm)"
        assert len(asset.get_data()) > 10_000, url
        kinds.setdefault(url.rsplit(".", 1)[-1], set()).add(asset.mimetype)
        asset.close()
    # The platform's mime table names JavaScript: RFC 9239's text/javascript, or the older name.
    assert kinds.keys() == {"css", "js"} and kinds["css"] == {"text/css"}
    assert len(kinds["js"]) == 1 and kinds["js"] <= {"text/javascript", "application/javascript"}
    assert any(url.endswith("swagger-ui-bundle.js") for url in urls)


def test_docs_page_turns_off_the_online_validator(docs_page: tuple[str, Node]) -> None:
    _html, page = docs_page
    script = "\n".join(scripts(page))
    match = re.search(r"override_config\s*=\s*(\{.*?\});", script, re.S)
    assert match, "no Swagger UI config found on the page"
    config = json.loads(match.group(1))
    assert "validatorUrl" in config and config["validatorUrl"] is None


# --------------------------------------------------------------------------------------------
# What a generated client relies on (api/document.py)
# --------------------------------------------------------------------------------------------


def test_every_operation_has_a_stable_unique_operation_id(backend_app: Flask,
                                                          spec: dict[str, Any]) -> None:
    from marketplace.api.document import OPERATION_IDS

    ids = [op["operationId"] for _m, _p, op in operations(spec)]
    assert len(ids) == len(set(ids)), "duplicate operationIds"
    assert set(ids) == set(OPERATION_IDS.values()), "an operation without a fixed id"
    assert all(re.fullmatch(r"[a-z][A-Za-z]+", i) for i in ids)
    assert {"createNeed", "listNeedOffers", "acceptOffer", "rateNeed"} <= set(ids)


def test_no_operation_hides_statuses_under_default(spec: dict[str, Any]) -> None:
    responses = spec["components"]["responses"]
    for method, path, op in operations(spec):
        assert "default" not in op["responses"], (method, path)
        codes = set(op["responses"])
        if op.get("security", spec["security"]):
            assert "401" in codes, (method, path)
        if "{" in path:
            assert "404" in codes, (method, path)
        if "requestBody" in op:
            assert {"400", "413", "415", "422"} <= codes, (method, path)
        for code, response in op["responses"].items():
            if code.startswith(("4", "5")):
                if "$ref" in response:
                    response = responses[response["$ref"].rsplit("/", 1)[1]]
                schema = response["content"]["application/json"]["schema"]
                detail = deref(schema, spec)["properties"]["error"]["properties"]
                assert detail["status"]["enum"] == [int(code)], (method, path, code)


def test_headers_are_documented_where_they_are_sent(spec: dict[str, Any]) -> None:
    idempotent = {op["operationId"] for _m, _p, op in operations(spec)
                  if any(p["name"] == "Idempotency-Key" for p in op.get("parameters", []))}
    assert idempotent == {"createUser", "createToken", "createNeed", "createOffer", "createWebhook",
                          "sendMessage", "rateNeed", "replyToRating"}
    for _method, _path, op in operations(spec):
        for code, response in op["responses"].items():
            if code.startswith("2"):
                headers = response["headers"]
                assert "X-Request-Id" in headers, op["operationId"]
                if op["operationId"] in idempotent:
                    assert "Idempotent-Replayed" in headers
                if "429" in op["responses"]:
                    assert {"RateLimit-Limit", "RateLimit-Remaining"} <= set(headers)
    unauthorized = spec["components"]["responses"]["UNAUTHORIZED"]
    assert "WWW-Authenticate" in unauthorized["headers"]


def test_request_body_examples_are_bodies_the_server_accepts(spec: dict[str, Any]) -> None:
    """Each documented example validates against its request schema (and the marshmallow one)."""
    seen = 0
    for ep in BODY_ENDPOINTS:
        body = operation(spec, ep)["requestBody"]["content"]["application/json"]
        if "example" not in body:
            continue
        seen += 1
        errors = [e.message for e in OAS30WriteValidator(request_schema(spec, ep))
                  .iter_errors(body["example"])]
        assert not errors, (ep.key, errors)
        assert not ep.schema().validate(body["example"]), ep.key
    assert seen == len(BODY_ENDPOINTS)


def test_links_lead_through_the_loop(spec: dict[str, Any]) -> None:
    by_id = {op["operationId"]: (path, op) for _m, path, op in operations(spec)}
    path, op = by_id["createNeed"]
    links_ = op["responses"]["201"]["links"]
    assert links_["listNeedOffers"]["operationId"] == "listNeedOffers"
    for source in ("createNeed", "createOffer", "acceptOffer", "completeNeed", "rateNeed"):
        _path, op = by_id[source]
        success = next(r for c, r in op["responses"].items() if c.startswith("2"))
        for link in success["links"].values():
            target_path, _target = by_id[link["operationId"]]
            assert set(link["parameters"]) == set(re.findall(r"{(\w+)}", target_path))


def test_nullable_references_keep_their_type(spec: dict[str, Any]) -> None:
    provider = spec["components"]["schemas"]["Me"]["properties"]["provider"]
    assert provider["anyOf"][0] == {"$ref": "#/components/schemas/ProviderOut"}
    null_only = OAS30ReadValidator(deref(provider, spec))
    assert null_only.is_valid(None) and not null_only.is_valid({"anything": 1})
    for _method, _path, op in operations(spec):
        for p in op.get("parameters", []):
            if p["in"] == "query":
                assert None not in p["schema"].get("enum", []) and "nullable" not in p["schema"]


def test_the_server_rules_are_in_the_schema(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    money = schemas["Money"]["properties"]["currency"]
    assert "USD" in money["enum"] and "usd" not in money["enum"]
    assert "catering" in schemas["NeedIn"]["properties"]["category"]["enum"]
    location = OAS30WriteValidator(schemas["LocationIn"])
    assert location.is_valid({"lat": 1, "lon": 2}) and location.is_valid({"query": "Austin"})
    for bad in ({}, {"lat": 1}, {"query": "Austin", "lat": 1}):
        assert not location.is_valid(bad), bad
    mark = OAS30WriteValidator(schemas["MarkRead"])
    assert not mark.is_valid({}) and not mark.is_valid({"ids": [1], "up_to": 3})
    mine = next(p for p in spec["paths"][f"{API}/needs"]["get"]["parameters"]
                if p["name"] == "mine")
    assert mine["schema"]["enum"] == [True]
    assert spec["servers"][0]["url"]
