"""The SMS endpoints' part of /openapi.json."""

from __future__ import annotations

_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_TWIML = {"content": {"text/xml": {"schema": {"type": "string"}}}}
_SIGNED = [{"name": "X-Twilio-Signature", "in": "header", "required": True, "schema": {"type": "string"}}]


def _form(required: list[str], fields: list[str]) -> dict:
    return {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": {
        "type": "object", "required": required, "properties": {f: {"type": "string"} for f in fields}}}}}


SMS_PATHS = {
    "/v1/sms/inbound": {"post": {
        "summary": "Twilio's inbound SMS webhook, signed for ALERTD_PUBLIC_URL + path; answers empty TwiML "
                   "(a responder's acknowledgement gets a one-line confirmation)",
        "security": [], "parameters": _SIGNED,
        "requestBody": _form(["MessageSid", "From"], ["MessageSid", "From", "To", "Body", "AccountSid"]),
        "responses": {"200": {"description": "TwiML", **_TWIML},
                      "400": {"description": "MessageSid or From missing", **_ERROR},
                      "403": {"description": "missing or wrong signature", **_ERROR}}}},
    "/v1/sms/status": {"post": {
        "summary": "Twilio's delivery status callback for SMS to responders (signed like the inbound webhook)",
        "security": [], "parameters": _SIGNED,
        "requestBody": _form(["MessageSid", "MessageStatus"], ["MessageSid", "MessageStatus", "ErrorCode"]),
        "responses": {"200": {"description": "recorded", **_TWIML},
                      "403": {"description": "missing or wrong signature", **_ERROR}}}},
    "/v1/sms/triage": {"get": {
        "summary": "The duty desk's queue of SMS from numbers nobody enrolled with nothing to dispatch on "
                   "(supervisor or admin; the read is audited)",
        "responses": {"200": {"description": "{items: [{id, phone, body, received_at}]}"},
                      "401": {"description": "no or bad token", **_ERROR},
                      "403": {"description": "wrong role", **_ERROR}}}},
    "/v1/sms/triage/{id}/resolve": {"post": {
        "summary": "Mark a triage message dealt with (supervisor or admin; audited)",
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
        "responses": {"200": {"description": "{id, resolved}"},
                      "404": {"description": "no such open triage message", **_ERROR}}}},
}
