"""The button and unit-terminal wire protocol: topics, payload checks and the message MAC. Pure: no I/O."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime

PREFIX = "alertd/v1"
BUTTON_EVENTS = ("press", "heartbeat")
UNIT_EVENTS = ("location", "ack")
MAX_SKEW_S = 600  # a ts further than this from the service's clock is refused
MAX_SEQ = 2**53   # what a JSON number holds exactly
# Shared subscriptions: several `alertd serve` split the messages; leaves are named so the service never
# receives its own acks and dispatches back.
SUBSCRIPTIONS = tuple(
    [f"$share/alertd/{PREFIX}/buttons/+/{e}" for e in BUTTON_EVENTS]
    + [f"$share/alertd/{PREFIX}/units/+/{e}" for e in UNIT_EVENTS]
)


class Refused(Exception):
    """A message the service will not act on; `kind` names the security event it records."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.message = kind, message


def button_topic(device_id: str, leaf: str) -> str:
    return f"{PREFIX}/buttons/{device_id}/{leaf}"


def unit_topic(unit_id: str, leaf: str) -> str:
    return f"{PREFIX}/units/{unit_id}/{leaf}"


def split_topic(topic: str) -> tuple[str, str, str]:
    """("buttons" or "units", the device or unit id, the leaf) of a topic the service subscribes to."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != PREFIX or parts[2] not in ("buttons", "units") or not parts[3]:
        raise Refused("bad_topic", "not an alertd topic")
    return parts[2], parts[3], parts[4]


def mac(secret_hex: str, device_id: str, event: str, seq: int, ts: int) -> str:
    """Lowercase hex HMAC-SHA256 of "{device_id}|{event}|{seq}|{ts}", keyed with the button's secret."""
    key = bytes.fromhex(secret_hex)
    return hmac.new(key, f"{device_id}|{event}|{seq}|{ts}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ButtonMessage:
    device_id: str
    event: str
    seq: int
    ts: int
    mac: str
    battery: float | None = None
    gps: tuple[float, float, float | None] | None = None  # lat, lon, accuracy in metres
    cell: tuple[int, int, int, int] | None = None        # mcc, mnc, lac, cid

    @property
    def sent_at(self) -> datetime:
        """When the button says it sent the message (`ts`, checked against the clock on receipt)."""
        return datetime.fromtimestamp(self.ts, UTC)


def _json_object(payload: bytes) -> dict:
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise Refused("malformed_payload", "payload is not JSON") from None
    if not isinstance(body, dict):
        raise Refused("malformed_payload", "payload must be a JSON object")
    return body


def _int(body: dict, key: str, low: int, high: int) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Refused("malformed_payload", f"{key} must be an integer in [{low}, {high}]")
    return value


def _number(value, key: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not low <= value <= high:
        raise Refused("malformed_payload", f"{key} must be a number in [{low}, {high}]")
    return float(value)


def parse_button(device_id: str, event: str, payload: bytes) -> ButtonMessage:
    """Check the shape of a press or heartbeat (not yet its MAC, time or seq)."""
    if event not in BUTTON_EVENTS:
        raise Refused("bad_topic", f"unknown button event {event!r}")
    body = _json_object(payload)
    seq = _int(body, "seq", 1, MAX_SEQ)
    ts = _int(body, "ts", 0, MAX_SEQ)
    tag = body.get("mac")
    if not isinstance(tag, str) or len(tag) != 64:
        raise Refused("malformed_payload", "mac must be 64 hex characters")
    battery = body.get("bat")
    if battery is not None:
        battery = _number(battery, "bat", 0.0, 1.0)
    elif event == "heartbeat":
        raise Refused("malformed_payload", "a heartbeat carries bat")
    gps = cell = None
    if event == "press" and body.get("loc") is not None:
        loc = body["loc"]
        if not isinstance(loc, dict):
            raise Refused("malformed_payload", "loc must be an object")
        acc = loc.get("acc")
        gps = (_number(loc.get("lat"), "loc.lat", -90, 90), _number(loc.get("lon"), "loc.lon", -180, 180),
               None if acc is None else _number(acc, "loc.acc", 0, 1_000_000))
    if event == "press" and body.get("cell") is not None:
        c = body["cell"]
        if not isinstance(c, dict):
            raise Refused("malformed_payload", "cell must be an object")
        cell = (_int(c, "mcc", 0, 999), _int(c, "mnc", 0, 999), _int(c, "lac", 0, 2**32), _int(c, "cid", 0, 2**40))
    return ButtonMessage(device_id, event, seq, ts, tag.lower(), battery, gps, cell)


def authentic(message: ButtonMessage, secret_hex: str) -> bool:
    expected = mac(secret_hex, message.device_id, message.event, message.seq, message.ts)
    return hmac.compare_digest(expected, message.mac)


def check_button(message: ButtonMessage, secret_hex: str, now_ts: float) -> None:
    """Refuse a forged MAC or a ts more than MAX_SKEW_S from now (seq is checked against the stored one)."""
    if not authentic(message, secret_hex):
        raise Refused("bad_mac", "mac does not match")
    if abs(message.ts - now_ts) > MAX_SKEW_S:
        raise Refused("stale_ts", "ts is more than 10 minutes off")


@dataclass(frozen=True)
class UnitLocation:
    lat: float
    lon: float
    acc: float | None
    ts: int | None


def parse_unit_location(payload: bytes) -> UnitLocation:
    body = _json_object(payload)
    acc, ts = body.get("acc"), body.get("ts")
    return UnitLocation(
        lat=_number(body.get("lat"), "lat", -90, 90),
        lon=_number(body.get("lon"), "lon", -180, 180),
        acc=None if acc is None else _number(acc, "acc", 0, 1_000_000),
        ts=None if ts is None else _int(body, "ts", 0, MAX_SEQ),
    )


@dataclass(frozen=True)
class UnitAck:
    dispatch_id: str
    status: str
    note: str | None


def parse_unit_ack(payload: bytes) -> UnitAck:
    """`{dispatch_id, status}` where status is acknowledged, en_route, on_scene or resolved."""
    body = _json_object(payload)
    dispatch_id, status, note = body.get("dispatch_id"), body.get("status", "acknowledged"), body.get("note")
    if not isinstance(dispatch_id, str) or not 0 < len(dispatch_id) <= 64:
        raise Refused("malformed_payload", "dispatch_id must be a string")
    if status not in ("acknowledged", "en_route", "on_scene", "resolved"):
        raise Refused("malformed_payload", "status must be acknowledged, en_route, on_scene or resolved")
    if note is not None and (not isinstance(note, str) or len(note) > 2000):
        raise Refused("malformed_payload", "note must be a string of at most 2000 characters")
    return UnitAck(dispatch_id, status, note)
