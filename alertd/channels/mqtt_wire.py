"""What the MQTT channels (buttons, unit terminals) share on the wire: the topic prefix, JSON payload reading
that refuses with a security event's kind, and how an answer is published."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from alertd.core import validate
from alertd.core.model import Refused
from alertd.core.validate import Malformed

PREFIX = "alertd/v1"
MAX_SEQ = 2**53   # what a JSON number holds exactly
Publish = Callable[[str, str], None]  # (topic, payload): QoS 1 on the service's own connection


def json_object(payload: bytes) -> dict:
    try:
        body = validate.document(payload, "payload")
    except Malformed as exc:
        raise Refused("malformed_payload", exc.message) from None
    if not isinstance(body, dict):
        raise Refused("malformed_payload", "payload must be a JSON object")
    return body


def required(kind: validate.Field, value: Any, name: str):
    try:
        return kind.parse(value, name)
    except Malformed as exc:
        raise Refused("malformed_payload", exc.message) from None
