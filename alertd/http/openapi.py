"""The API spec served at /openapi.json (the contract of ../docs/contract.md, machine-readable).

Request bodies and parameters are described by the same validate fields the handlers parse with, so the spec
says exactly what is accepted; each operation lists every status it can answer. tests/integration/test_api_contract.py
runs schemathesis against it with every role's token.
"""

from __future__ import annotations

from typing import Any

from alertd.channels.app import http as app_http
from alertd.channels.app import selftest as app_selftest
from alertd.channels.app import static as app_static
from alertd.channels.app import timers as app_timers
from alertd.channels.buttons import http as buttons_http
from alertd.channels.console import drills as drills_http
from alertd.channels.console import officer as officer_http
from alertd.channels.console import static as console_static
from alertd.channels.sms import http as sms_http
from alertd.channels.traccar import http as traccar_http
from alertd.channels.traccar import protocol as traccar
from alertd.core.model import DISPATCH_STATUSES, KINDS
from alertd.core.validate import Field, Text
from alertd.web.budgets import UNLIMITED

JSON = "application/json"
OFFICERS = ("officer", "supervisor")


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def content(schema: dict, media: str = JSON) -> dict:
    return {"content": {media: {"schema": schema}}}


ERROR_TEXT = {
    400: "malformed request: a field is missing, of the wrong type or out of range (nothing changed)",
    401: "no or bad token", 403: "wrong role, wrong PIN or bad signature", 404: "unknown or not yours",
    409: "conflict with the current state", 413: "body larger than 256 KiB",
    429: "over its budget (per source address, and per device for device tokens): `rate_limited`, retry after "
         "the seconds in Retry-After",
    "429_gateway": "a gateway over its budget with events that are not an SOS (an SOS is never refused), or a "
                   "sender without a valid gateway token over its address's budget: `rate_limited`",
    503: "a component alertd needs is unavailable; nothing was kept",
}


def responses(ok: dict, errors: set[int]) -> dict:
    out = dict(ok)
    for code in sorted(errors):
        out[str(code)] = {"description": ERROR_TEXT[code], **content(ref("Error"))}
        if code == 429:
            out[str(code)]["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}
    return out


def operation(summary: str, ok: dict, *, roles: tuple[str, ...] | None, body: Field | None = None,
              parameters: list[dict] | tuple = (), errors: tuple[int, ...] = (), form: dict | None = None) -> dict:
    """An operation and the statuses it can answer: 400 and 413 for a body, 400 for a query, 401 and 403 with a
    token, 404 for an id in the path, 429 for any that spends a request budget (all but http/budgets.UNLIMITED),
    and the `errors` of its own."""
    found = {429, *errors}
    if body is not None or form is not None:
        found |= {400, 413}
    if any(p["in"] == "query" for p in parameters):
        found.add(400)
    if roles is not None:
        found |= {401, 403}
    if any(p["in"] == "path" for p in parameters):
        found.add(404)
    op: dict[str, Any] = {"summary": summary, "responses": responses(ok, found)}
    if roles is None:
        op["security"] = []
    else:
        op["description"] = f"Bearer token of: {', '.join(roles)}."
    if parameters:
        op["parameters"] = list(parameters)
    if body is not None:
        op["requestBody"] = {"required": True, **content(body.schema())}
    if form is not None:
        op["requestBody"] = {"required": True, **content(form, "application/x-www-form-urlencoded")}
    return op


def path_param(name: str, schema: dict) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def query_param(name: str, field: Field, description: str = "") -> dict:
    return {"name": name, "in": "query", "required": False, "schema": field.schema(), "description": description}


def ok(description: str, schema: dict | None = None, status: int = 200, media: str = JSON) -> dict:
    answer: dict[str, Any] = {"description": description}
    if schema is not None:
        answer.update(content(schema, media))
    return {str(status): answer}


UUID = {"type": "string", "format": "uuid"}
ALERT_ID = path_param("id", UUID)
DISPATCH_ID = path_param("id", UUID)
OBJECT = {"type": "object"}
TIMER_ID = path_param("id", UUID)
TIMER = {"type": "object", "required": ["timer_id", "status", "due_at"], "properties": {
    "timer_id": UUID, "status": {"type": "string", "enum": ["running", "checked_in", "expired"]},
    "due_at": {"type": "string", "format": "date-time"}}}
TIME = {"type": "string", "format": "date-time"}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
ITEMS = {"type": "object", "required": ["items"], "properties": {"items": {"type": "array", "items": OBJECT}}}

SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
    "Fix": app_http.FIX.schema(),
    "NewAlert": app_http.NEW_ALERT.schema(),
    "Location": {"type": ["object", "null"], "properties": {
        "lat": {"type": "number"}, "lon": {"type": "number"}, "accuracy_m": {"type": ["number", "null"]},
        "source": {"type": "string"}, "fix_time": TIME}},
    "AlertAccepted": {"type": "object", "required": ["alert_id", "status"], "properties": {
        "alert_id": UUID, "status": {"type": "string"}}},
    "Dispatch": {"type": "object", "required": ["id", "alert_id", "kind", "responder_id", "status", "code",
                                                "ack_deadline", "acknowledged_at", "location"], "properties": {
        "id": UUID, "alert_id": UUID, "kind": {"type": "string", "enum": list(KINDS)},
        "responder_id": {"type": "string"}, "status": {"type": "string", "enum": list(DISPATCH_STATUSES)},
        "code": {"type": "string"}, "ack_deadline": TIME, "acknowledged_at": NULLABLE_TIME,
        "late_ack": {"type": "boolean"}, "attempt": {"type": "integer"},
        "sms_delivery": {"type": ["string", "null"], "description": "delivery state of the dispatch's SMS "
                         "(undelivered counts toward escalation); null when none was sent"},
        "location": ref("Location"), "drill": {"type": "boolean", "description": "a drill's dispatch (DRILL)"}}},
    "Alert": {"type": "object", "required": ["alert_id", "status", "priority", "duress", "location", "locations",
                                             "dispatches", "events"], "properties": {
        "alert_id": UUID, "status": {"type": "string", "enum": ["open", "cancelled", "resolved", "unanswered"]},
        "priority": {"type": "string", "enum": ["normal", "high"]}, "duress": {"type": "boolean"},
        "drill": {"type": "boolean", "description": "a drill's alert: it has no person (docs/drills.md)"},
        "location": ref("Location"), "locations": {"type": "array", "items": ref("Location")},
        "dispatches": {"type": "array", "items": ref("Dispatch")}, "events": {"type": "array", "items": OBJECT}}},
    "SignedIn": {"type": "object", "required": ["token", "expires_at", "session_expires_at", "now", "officer"],
                 "properties": {"token": {"type": "string"}, "expires_at": TIME, "session_expires_at": TIME,
                                "now": TIME, "officer": OBJECT}},
    "Credentials": {"type": "object", "properties": {
        **{name: {"type": "string"} for name in ("device_id", "username", "password", "client_id", "hmac_secret",
                                                 "person_id", "kind")}, "topics": OBJECT}},
}

ALERT_ACCEPTED = ref("AlertAccepted")
DISPATCH = ref("Dispatch")
TWIML = "text/xml"
SIGNED = {"name": "X-Twilio-Signature", "in": "header", "required": True, "schema": {"type": "string"},
          "description": "Twilio's signature of ALERTD_PUBLIC_URL + path and the form"}
WEBSOCKET = [{"name": name, "in": "header", "required": True, "schema": schema} for name, schema in (
    ("Upgrade", {"type": "string", "enum": ["websocket"]}), ("Connection", {"type": "string", "enum": ["Upgrade"]}),
    ("Sec-WebSocket-Version", {"type": "string", "enum": ["13"]}),
    ("Sec-WebSocket-Key", {"type": "string", "pattern": "^[A-Za-z0-9+/]{22}==$"}))]


def _form(required: list[str], fields: dict[str, Text]) -> dict:
    return {"type": "object", "required": required, "properties": {k: f.schema() for k, f in fields.items()}}


SIGNED_IN = ref("SignedIn")
ANY_CONSOLE_ROLE = (*OFFICERS, "admin")
CONSOLE = {
    "/console/": {"get": operation("The duty officer console (HTML; strict CSP)", ok("the page", {"type": "string"},
                                                                                    media="text/html"), roles=None)},
    "/console/api/session": {
        "post": operation("Sign in: a 15-minute JWT bound to the officer's responder and role; 401 alike for a "
                          "wrong user or password, 429 while the attempts are throttled",
                          ok("signed in", SIGNED_IN), roles=None, body=console_static.SIGN_IN, errors=(401,)),
        "delete": operation("Sign out: the session ends on every instance",
                            ok("signed out", {"type": "object", "required": ["signed_out"]}), roles=OFFICERS)},
    "/console/api/session/renew": {"post": operation("A fresh token while the session lives",
                                                     ok("renewed", SIGNED_IN), roles=OFFICERS)},
    "/console/api/me": {
        "get": operation("The signed-in account and the server's clock",
                         ok("the account", {"type": "object", "required": ["now", "officer", "tiles"]}),
                         roles=ANY_CONSOLE_ROLE),
        "patch": operation("Change the account's language", ok("the account", {"type": "object",
                                                                              "required": ["officer"]}),
                           roles=OFFICERS, body=console_static.LANGUAGE, errors=(404,))},
    "/console/api/notices": {"get": operation("Button supervision notices addressed to the caller's responder",
                                              ok("notices", ITEMS), roles=OFFICERS)},
    "/console/api/caseload": {"get": operation(
        "The people whose buttons name the caller's responder as caseworker, with when each of their channels "
        "(each button, each phone app, SMS) last proved it works", ok("{items: [{person_id, channels}]}", ITEMS),
        roles=OFFICERS)},
    "/console/api/alerts/{id}": {"get": operation(
        "An alert with the dispatched responders' positions (audited read): an officer sees alerts dispatched "
        "to them, a supervisor their region's, an admin any", ok("the alert", OBJECT), roles=ANY_CONSOLE_ROLE,
        parameters=[ALERT_ID])},
    "/console/api/places": {"get": operation(
        "Named places inside a map view, the most populous first (labels for the offline map; GeoNames data, "
        "CC BY 4.0)", ok("the places", {"type": "object", "required": ["items", "attribution"]}),
        roles=ANY_CONSOLE_ROLE,
        parameters=[{**query_param("bbox", console_static.BBOX, "west,south,east,north in degrees"), "required": True}])},
    "/console/api/alerts/{id}/reveal": {"post": operation(
        "Admin: the person's phone numbers (audited, with a reason)", ok("the numbers", OBJECT), roles=("admin",),
        body=console_static.REVEAL, parameters=[ALERT_ID])},
    "/console/api/region": {"get": operation(
        "Supervisor: open, near-deadline, escalated, unanswered and triage alerts, notices and failed messages of "
        "their region; an admin names the region (?region=; 404 without one)", ok("the region", OBJECT),
        roles=("supervisor", "admin"), parameters=[query_param("region", console_static.REGION, "admin only")],
        errors=(404,))},
    "/console/api/officers": {
        "get": operation("Admin: console accounts", ok("accounts", ITEMS), roles=("admin",)),
        "post": operation("Admin: create an account (409 when the username is taken or the responder unknown)",
                          ok("created", OBJECT, 201), roles=("admin",), body=console_static.NEW_ACCOUNT, errors=(409,))},
    "/console/api/officers/{username}": {"patch": operation(
        "Admin: change or disable an account (ends its sessions)", ok("the account", OBJECT), roles=("admin",),
        body=console_static.ACCOUNT_CHANGE, errors=(409,),
        parameters=[path_param("username", {"type": "string", "pattern": "^[a-z0-9][a-z0-9._@-]{1,62}$"})])},
}
DRILL_TOTALS = {"type": "object", "required": [
    "dispatched", "counted", "acknowledged", "within_deadline", "within_60s", "late", "missed", "escalated",
    "share_within_deadline", "share_within_60s", "sms", "targets"], "properties": {
    **{name: {"type": "integer", "minimum": 0} for name in (
        "dispatched", "counted", "acknowledged", "within_deadline", "within_60s", "late", "missed", "escalated",
        "stood_down", "waiting")},
    "share_within_deadline": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
    "share_within_60s": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
    "median_seconds_to_acknowledge": {"type": ["number", "null"]}, "sms": OBJECT, "targets": OBJECT}}
DRILL: dict[str, Any] = {"type": "object", "required": ["drill_id", "alert_id", "started_by", "started_at", "ended_at", "running",
                                        "region", "target", "totals"], "properties": {
    "drill_id": UUID, "alert_id": UUID, "started_by": {"type": "string"}, "started_at": TIME,
    "ended_at": NULLABLE_TIME, "ended_by": {"type": ["string", "null"]}, "running": {"type": "boolean"},
    "region": {"type": ["string", "null"]}, "target": {"type": "string", "enum": ["place", "person"]},
    "person_id": {"type": ["string", "null"]}, "alert_status": {"type": "string"},
    "location": {"type": ["object", "null"]}, "totals": DRILL_TOTALS}}
DRILL_LINE = {"type": "object", "required": [
    "dispatch_id", "responder_id", "kind", "attempt", "sent_at", "acknowledged_at", "seconds_to_acknowledge",
    "deadline_seconds", "within_deadline", "escalated", "outcome", "sms"], "properties": {
    "dispatch_id": UUID, "responder_id": {"type": "string"}, "kind": {"type": "string", "enum": list(KINDS)},
    "attempt": {"type": "integer"}, "broadcast": {"type": "boolean"}, "status": {"type": "string"},
    "sent_at": TIME, "acknowledged_at": NULLABLE_TIME, "seconds_to_acknowledge": {"type": ["number", "null"]},
    "deadline_seconds": {"type": "number"}, "within_deadline": {"type": "boolean"},
    "within_60s": {"type": "boolean"}, "escalated": {"type": "boolean"},
    "outcome": {"type": "string", "enum": ["within_deadline", "late", "missed", "stood_down", "waiting"]},
    "sms": {"type": ["string", "null"]}, "sms_sent_at": NULLABLE_TIME}}
SCHEMAS["DrillReport"] = {**DRILL, "required": [*DRILL["required"], "responders"], "properties": {
    **DRILL["properties"], "responders": {"type": "array", "items": DRILL_LINE}}}
DRILL_ID = path_param("id", UUID)
SUPERVISORS = ("supervisor", "admin")
# Drills (docs/drills.md): a supervisor acts in their own region only (another region's drill is 404, starting one
# there 403); an officer may not drill.
DRILLS = {
    "/v1/drills": {
        "post": operation(
            "Supervisor or admin: start a drill at {lat, lon} or at {person_id} (her last fix, else her home; she "
            "is never contacted): a drill alert dispatched to real responders, every message marked DRILL. 404: "
            "no such person; 409: nobody on duty near there, or she has no fix and no home",
            ok("started", {"type": "object", "required": ["drill_id", "alert_id", "region"], "properties": {
                "drill_id": UUID, "alert_id": UUID, "region": {"type": ["string", "null"]}}}, 201),
            roles=SUPERVISORS, body=drills_http.NEW_DRILL, errors=(404, 409)),
        "get": operation(
            "Supervisor or admin: every drill started in [since, until) (default: the last 30 days) with its "
            "figures, and the share acknowledged within the deadline and within 60 s over all of them",
            ok("the period", {"type": "object", "required": ["since", "until", "drills", "totals", "items"],
                              "properties": {"since": TIME, "until": TIME, "region": {"type": ["string", "null"]},
                                             "drills": {"type": "integer"}, "totals": DRILL_TOTALS,
                                             "items": {"type": "array", "items": DRILL}}}),
            roles=SUPERVISORS, parameters=[query_param(name, field, field.description or "")
                                           for name, field in drills_http.PERIOD.items()])},
    "/v1/drills/{id}": {"get": operation(
        "Supervisor or admin: a drill's report: per responder dispatched, time to acknowledge against the "
        "deadline, escalation and SMS delivery; and its totals",
        ok("the report", ref("DrillReport")), roles=SUPERVISORS, parameters=[DRILL_ID])},
    "/v1/drills/{id}/end": {"post": operation(
        "Supervisor or admin: end a drill: every dispatch not resolved is stood down with a drill-ended message "
        "(an ended drill stays as it is); the report",
        ok("the report", ref("DrillReport")), roles=SUPERVISORS, parameters=[DRILL_ID])},
}
ENGINEERS = buttons_http.ENGINEERS
CREDENTIALS = ref("Credentials")
BUTTON_ID = path_param("id", buttons_http.DEVICE_ID.schema())
# The buttons' part (docs/buttons.md tells the whole story; the MQTT side is there too).
BUTTONS = {
    "/v1/buttons": {"post": operation(
        "Engineer: provision a button for a person; its MQTT password and HMAC secret are shown once",
        ok("provisioned", CREDENTIALS, 201), roles=ENGINEERS, body=buttons_http.NEW_BUTTON, errors=(404, 503))},
    "/v1/buttons/{id}/rotate": {"post": operation(
        "Engineer: a new MQTT password and HMAC secret; the old ones stop working at once",
        ok("rotated", CREDENTIALS), roles=ENGINEERS, parameters=[BUTTON_ID], errors=(503,))},
    "/v1/buttons/{id}/revoke": {"post": operation(
        "Engineer: revoke a button (or unit terminal); the broker disconnects it at once", ok("revoked", OBJECT),
        roles=ENGINEERS, parameters=[BUTTON_ID], errors=(503,))},
}

# Tests: she proves a channel works; nothing is dispatched (docs/contract.md "Tests"; a button tests over MQTT).
TEST_DONE = {"type": "object", "required": ["test_id", "status"], "properties": {
    "test_id": UUID, "status": {"type": "string", "enum": ["ok"]}}}
SELF_TESTS = {
    "/v1/tests": {"post": operation(
        "The phone app's self-test (phone device token): recorded, her caseworker told, nothing dispatched; a "
        "neutral confirmation SMS only if she opted in (in `language`). Idempotent on client_test_id.",
        {**ok("recorded", TEST_DONE, 201), **ok("the same client_test_id again: the same test", TEST_DONE)},
        roles=("device",), body=app_selftest.NEW_TEST)},
}

READINESS = {"type": "object", "required": ["status"], "properties": {
    "status": {"type": "string", "enum": ["ready", "not ready"]}}}

PATHS = {
    "/v1/alerts": {"post": operation(
        "Raise a silent alert (phone device token; an expired one is accepted and flagged). Idempotent on "
        "client_alert_id. While her alert is open, a new one joins it as a repeat (the same answer, with the "
        "open alert's id); never refused for volume.",
        {**ok("committed: a new alert, or a repeat that joined her open alert", ALERT_ACCEPTED, 201),
         **ok("the same client_alert_id again: the same alert", ALERT_ACCEPTED)},
        roles=("device",), body=app_http.NEW_ALERT)},
    "/v1/alerts/{id}/locations": {"post": operation(
        "Add one fix, a list of fixes, or {fixes: [...]} (1 to 100) to her open alert",
        ok("accepted", {"type": "object", "required": ["alert_id", "status", "accepted"], "properties": {
            "alert_id": UUID, "status": {"type": "string"}, "accepted": {"type": "integer"}}}),
        roles=("device",), body=app_http.FIXES, parameters=[ALERT_ID], errors=(409,))},
    "/v1/alerts/{id}/cancel": {"post": operation(
        "Cancel with the PIN; the duress PIN answers the same but keeps the alert live; a wrong PIN is 403",
        ok("cancelled", ALERT_ACCEPTED), roles=("device",), body=app_http.CANCEL, parameters=[ALERT_ID],
        errors=(409,))},
    "/v1/timers": {"post": operation(
        "Start a check-in timer (phone device token): unless she checks in with her PIN before due_at, her alert "
        "is raised (channel `timer`). Idempotent on client_timer_id.",
        {**ok("started", TIMER, 201), **ok("the same client_timer_id again: the same timer", TIMER)},
        roles=("device",), body=app_timers.NEW_TIMER, errors=(409,))},
    "/v1/timers/{id}": {"get": operation(
        "Her timer: running, checked_in or expired", ok("the timer", TIMER), roles=("device",),
        parameters=[TIMER_ID])},
    "/v1/timers/{id}/extend": {"post": operation(
        "Add duration_s to a running timer's due time (at most 24 h from now)", ok("extended", TIMER),
        roles=("device",), body=app_timers.EXTEND, parameters=[TIMER_ID], errors=(409,))},
    "/v1/timers/{id}/checkin": {"post": operation(
        "Check in with the PIN; the duress PIN answers the same and raises a duress alert at once; a wrong PIN is "
        "403 (recorded); after the timer's due time, 409",
        ok("checked in", {"type": "object", "required": ["timer_id", "status"], "properties": {
            "timer_id": UUID, "status": {"type": "string", "enum": ["checked_in"]}}}),
        roles=("device",), body=app_timers.CHECK_IN, parameters=[TIMER_ID], errors=(409,))},
    "/v1/enrol": {"post": operation(
        "The phone app redeems a one-time enrolment code (from `alertd people enrol`) for its device token",
        ok("enrolled", {"type": "object", "required": ["device_id", "token", "sms_number"], "properties": {
            "device_id": {"type": "string"}, "token": {"type": "string"},
            "sms_number": {"type": ["string", "null"]}}}),
        roles=None, body=app_static.ENROL, errors=(401,))},
    "/v1/alerts/{id}": {"get": operation(
        "An alert with its trail, dispatches and timeline (audited read): an officer sees alerts dispatched to "
        "their responder, an admin any", ok("the alert", ref("Alert")), roles=(*OFFICERS, "admin"),
        parameters=[ALERT_ID])},
    "/v1/dispatches": {"get": operation(
        "The officer's responder's dispatches", ok("list", {"type": "object", "required": ["items"], "properties": {
            "items": {"type": "array", "items": DISPATCH}}}),
        roles=OFFICERS, parameters=[query_param("status", officer_http.STATUS_FILTER, "only dispatches in this status")])},
    "/v1/dispatches/{id}/ack": {"post": operation(
        "Acknowledge (after the deadline it is accepted and recorded as late)", ok("the dispatch", DISPATCH),
        roles=OFFICERS, parameters=[DISPATCH_ID], errors=(409,))},
    "/v1/dispatches/{id}/status": {"post": operation(
        "Move a dispatch to en_route, on_scene or resolved, with a note", ok("the dispatch", DISPATCH),
        roles=OFFICERS, body=officer_http.NEW_STATUS, parameters=[DISPATCH_ID], errors=(409,))},
    "/v1/events": {"get": operation(
        "WebSocket of live dispatch and alert changes; ?since=EVENT_ID replays missed ones (browsers pass the "
        "token as ?access_token=)",
        {"101": {"description": "switching protocols"}}, roles=(*OFFICERS, "admin"),
        parameters=[*WEBSOCKET, {"name": "since", "in": "query", "required": False,
                                 "schema": {"type": "integer", "minimum": 0}}], errors=(400,))},
    "/v1/sms/inbound": {"post": operation(
        "Twilio's inbound SMS webhook, signed for ALERTD_PUBLIC_URL + path; answers empty TwiML (a responder's "
        "acknowledgement gets a one-line confirmation). Body is never refused: characters PostgreSQL cannot "
        "store become U+FFFD.",
        ok("TwiML", {"type": "string"}, media=TWIML), roles=None, parameters=[SIGNED], errors=(403,),
        form=_form(["MessageSid", "From"], {"MessageSid": sms_http.SID, "From": sms_http.PHONE,
                                            "To": sms_http.PHONE, "Body": Text(0, 1600),
                                            "AccountSid": sms_http.SID}))},
    "/v1/sms/status": {"post": operation(
        "Twilio's delivery status callback for SMS to responders (signed like the inbound webhook)",
        ok("recorded", {"type": "string"}, media=TWIML), roles=None, parameters=[SIGNED], errors=(403,),
        form=_form(["MessageSid", "MessageStatus"], {"MessageSid": sms_http.SID, "MessageStatus": sms_http.STATUS,
                                                     "ErrorCode": sms_http.ERROR_CODE}))},
    "/v1/sms/triage": {"get": operation(
        "The duty desk's queue of SMS from numbers nobody enrolled with nothing to dispatch on (audited read)",
        ok("{items: [{id, phone, body, received_at}]}", ITEMS), roles=("supervisor", "admin"))},
    "/v1/sms/triage/{id}/resolve": {"post": operation(
        "Mark a triage message dealt with (audited)",
        ok("{id, resolved}", {"type": "object", "required": ["id", "resolved"], "properties": {
            "id": {"type": "integer"}, "resolved": {"type": "boolean"}}}),
        roles=("supervisor", "admin"), parameters=[path_param("id", {"type": "integer", "minimum": 1,
                                                                     "maximum": 2**63 - 1})])},
    traccar_http.PATH: {"post": operation(
        "A Traccar server's forwarded event ({event, position?, device}) or position ({position, device}), with "
        "its gateway token (`alertd gateways add NAME`). An `alarm` event whose attributes.alarm is `sos`, from a "
        "tracker added with `alertd trackers add`, raises her alert (or joins her open one), once per Traccar "
        "event id; a position of a tracker whose person has an open alert joins its trail; anything else is "
        "ignored and counted. Traccar does not retry: the answer comes as soon as the alert is committed.",
        {**ok("her alert: raised (`created`), joined as a repeat (`joined`), the same event again (`duplicate`), "
              "or a position added to its trail (`location`)",
              {"type": "object", "required": ["alert_id", "outcome"], "properties": {
                  "alert_id": UUID, "outcome": {"type": "string",
                                                "enum": ["created", "joined", "duplicate", "location"]}}}),
         **ok("nothing raised or added, and why",
              {"type": "object", "required": ["ignored"], "properties": {"ignored": {"type": "string", "enum": [
                  "not_alarm", "not_sos", "unknown_tracker", "no_open_alert", "no_position"]}}}, 202)},
        roles=("gateway",), body=traccar.FORWARD)},
    **CONSOLE,
    **BUTTONS,
    **SELF_TESTS,
    **DRILLS,
    "/healthz": {"get": operation("Liveness", ok("alive", {"type": "object", "required": ["status"]}), roles=None)},
    "/readyz": {"get": operation(
        "Readiness: database and broker (which part is down is in the log and the metrics, not here)",
        {**ok("ready", READINESS), "503": {"description": "not ready", **content(READINESS)}}, roles=None)},
    "/metrics": {"get": operation(
        "Prometheus text metrics; with ALERTD_METRICS_TOKEN set, that token as a bearer token (else 401)",
        ok("metrics", {"type": "string"}, media="text/plain"), roles=None, errors=(401,))},
    "/openapi.json": {"get": operation("This document", ok("spec", OBJECT), roles=None)},
}

for _method, _path in UNLIMITED:  # these spend no request budget (her alerts, Twilio's webhooks, probes)
    PATHS[_path][_method.lower()]["responses"].pop("429", None)

# Traccar's forwards: the route spends no budget for an SOS, but the channel spends its gateway's for the rest.
_TRACCAR = PATHS[traccar_http.PATH]["post"]["responses"]
_TRACCAR["429"] = {"description": ERROR_TEXT["429_gateway"], **content(ref("Error")),
                   "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}}

SPEC = {
    "openapi": "3.1.0",
    "info": {"title": "alertd", "version": "1", "description": "Silent emergency alerts: intake, location, "
             "nearest dispatch, acknowledgement deadlines and escalation. Every error is "
             "{error: {code, message}} and is never cached; a malformed request changes nothing and is recorded "
             "as a security event."},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                       "description": "a JWT (`alertd tokens issue`, the console's sign-in, a "
                                                      "phone's enrolment), or a gateway's own token (`alertd "
                                                      "gateways add`) for /v1/gateways/..."}},
        "schemas": SCHEMAS,
    },
    "security": [{"bearer": []}],
    "paths": PATHS,
}
