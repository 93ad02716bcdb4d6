"""The API spec served at /openapi.json (the contract of ../docs/contract.md, machine-readable)."""

from __future__ import annotations

from alertd.channels.sms.spec import SMS_PATHS
from alertd.http.budgets import UNLIMITED
from alertd.http.buttons import BUTTON_PATHS
from alertd.http.console import CONSOLE_PATHS


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


_ERRORS = {str(code): {"description": text, **_json(_ref("Error"))} for code, text in {
    400: "malformed request", 401: "no or bad token", 403: "wrong role or signature",
    404: "unknown or not yours", 409: "conflict"}.items()}


def _op(summary: str, ok: dict, body: dict | None = None, security: bool = True, params=None) -> dict:
    op = {"summary": summary, "responses": {**ok, **_ERRORS}}
    if body:
        op["requestBody"] = {"required": True, **_json(body)}
    if not security:
        op["security"] = []
    if params:
        op["parameters"] = params
    return op


_ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}]

SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "alertd", "version": "1", "description": "Silent emergency alerts: intake, location, "
             "nearest dispatch, acknowledgement deadlines and escalation."},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
            "Fix": {"type": "object", "required": ["lat", "lon"], "properties": {
                "lat": {"type": "number", "minimum": -90, "maximum": 90},
                "lon": {"type": "number", "minimum": -180, "maximum": 180},
                "accuracy_m": {"type": ["number", "null"], "minimum": 0},
                "fix_time": {"type": "string", "format": "date-time"},
                "source": {"type": "string", "enum": ["gps", "network", "wifi", "cell", "aml", "sms_text",
                                                       "home", "manual", "unit"]}}},
            "Location": {"type": ["object", "null"], "properties": {
                "lat": {"type": "number"}, "lon": {"type": "number"}, "accuracy_m": {"type": ["number", "null"]},
                "source": {"type": "string"}, "fix_time": {"type": "string", "format": "date-time"}}},
            "NewAlert": {"type": "object", "required": ["client_alert_id"], "properties": {
                "client_alert_id": {"type": "string", "minLength": 1, "maxLength": 100},
                "triggered_at": {"type": "string", "format": "date-time"},
                "location": _ref("Fix")}},
            "AlertAccepted": {"type": "object", "required": ["alert_id", "status"], "properties": {
                "alert_id": {"type": "string", "format": "uuid"}, "status": {"type": "string"}}},
            "Dispatch": {"type": "object", "required": ["id", "alert_id", "kind", "responder_id", "status", "code",
                                                        "ack_deadline", "acknowledged_at", "location"],
                         "properties": {
                "id": {"type": "string", "format": "uuid"}, "alert_id": {"type": "string", "format": "uuid"},
                "kind": {"type": "string", "enum": ["police_post", "crisis_centre", "mobile_unit"]},
                "responder_id": {"type": "string"},
                "status": {"type": "string", "enum": ["pending", "acknowledged", "expired", "en_route",
                                                       "on_scene", "resolved", "cancelled"]},
                "code": {"type": "string"}, "ack_deadline": {"type": "string", "format": "date-time"},
                "acknowledged_at": {"type": ["string", "null"], "format": "date-time"},
                "late_ack": {"type": "boolean"}, "attempt": {"type": "integer"},
                "sms_delivery": {"type": ["string", "null"],
                                 "description": "delivery state of the dispatch's SMS (undelivered counts toward "
                                                "escalation); null when none was sent"},
                "location": _ref("Location")}},
            "Alert": {"type": "object", "required": ["alert_id", "status", "priority", "duress", "location",
                                                     "locations", "dispatches", "events"], "properties": {
                "alert_id": {"type": "string", "format": "uuid"},
                "status": {"type": "string", "enum": ["open", "cancelled", "resolved", "unanswered"]},
                "priority": {"type": "string", "enum": ["normal", "high"]}, "duress": {"type": "boolean"},
                "location": _ref("Location"), "locations": {"type": "array", "items": _ref("Location")},
                "dispatches": {"type": "array", "items": _ref("Dispatch")},
                "events": {"type": "array", "items": {"type": "object"}}}},
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/alerts": {"post": _op(
            "Raise a silent alert (phone device token). Idempotent on client_alert_id. While her alert is open, a "
            "new one joins it as a repeat (the same answer, with the open alert's id); never refused for volume.",
            {"201": {"description": "committed: a new alert, or a repeat that joined her open alert",
                     **_json(_ref("AlertAccepted"))},
             "200": {"description": "the same client_alert_id again: the same alert",
                     **_json(_ref("AlertAccepted"))}},
            _ref("NewAlert"))},
        "/v1/alerts/{id}/locations": {"post": _op(
            "Add one fix or a list of fixes to an open alert", {"200": {"description": "accepted"}},
            {"oneOf": [_ref("Fix"), {"type": "array", "items": _ref("Fix")}]}, params=_ID)},
        "/v1/alerts/{id}/cancel": {"post": _op(
            "Cancel with the PIN; the duress PIN answers the same but keeps the alert live",
            {"200": {"description": "cancelled", **_json(_ref("AlertAccepted"))}},
            {"type": "object", "required": ["pin"], "properties": {"pin": {"type": "string"}}}, params=_ID)},
        "/v1/enrol": {"post": _op(
            "The phone app redeems a one-time enrolment code (from `alertd people enrol`) for its device token",
            {"200": {"description": "enrolled", **_json({"type": "object", "properties": {
                "device_id": {"type": "string"}, "token": {"type": "string"},
                "sms_number": {"type": ["string", "null"]}}})}},
            {"type": "object", "required": ["code"], "properties": {"code": {"type": "string"}}}, security=False)},
        "/v1/alerts/{id}": {"get": _op("An alert with its trail, dispatches and timeline (audited read)",
                                       {"200": {"description": "the alert", **_json(_ref("Alert"))}}, params=_ID)},
        "/v1/dispatches": {"get": _op(
            "The officer's responder's dispatches",
            {"200": {"description": "list", **_json({"type": "object", "properties": {
                "items": {"type": "array", "items": _ref("Dispatch")}}})}},
            params=[{"name": "status", "in": "query", "schema": {"type": "string"}}])},
        "/v1/dispatches/{id}/ack": {"post": _op(
            "Acknowledge (after the deadline it is accepted and recorded as late)",
            {"200": {"description": "the dispatch", **_json(_ref("Dispatch"))}}, params=_ID)},
        "/v1/dispatches/{id}/status": {"post": _op(
            "Move a dispatch to en_route, on_scene or resolved, with a note",
            {"200": {"description": "the dispatch", **_json(_ref("Dispatch"))}},
            {"type": "object", "required": ["status"], "properties": {
                "status": {"type": "string", "enum": ["en_route", "on_scene", "resolved"]},
                "note": {"type": "string", "maxLength": 2000}}}, params=_ID)},
        "/v1/events": {"get": _op("WebSocket of live dispatch and alert changes; ?since=EVENT_ID replays missed ones",
                                  {"101": {"description": "switching protocols"}})},
        **SMS_PATHS,
        **CONSOLE_PATHS,
        **BUTTON_PATHS,
        "/healthz": {"get": _op("Liveness", {"200": {"description": "alive"}}, security=False)},
        "/readyz": {"get": _op("Readiness: database and broker", {"200": {"description": "ready"},
                                                                   "503": {"description": "not ready"}},
                               security=False)},
        "/metrics": {"get": _op("Prometheus text metrics", {"200": {"description": "metrics"}}, security=False)},
        "/openapi.json": {"get": _op("This document", {"200": {"description": "spec"}}, security=False)},
    },
}


_RATE_LIMITED = {"description": "over its budget (per source address, and per device for device tokens): "
                                "`rate_limited`, retry after the seconds in Retry-After",
                 "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}, **_json(_ref("Error"))}


def _with_budgets(spec: dict) -> dict:
    """Every operation that spends a request budget may answer 429 (http/budgets.py says which do not)."""
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if (method.upper(), path) not in UNLIMITED:
                op["responses"].setdefault("429", _RATE_LIMITED)
    return spec


_with_budgets(SPEC)
