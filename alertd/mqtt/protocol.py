"""The button and unit-terminal wire protocol: topics, payload checks and the message MAC. Pure: no I/O."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alertd.core import validate
from alertd.core.validate import Integer, Malformed, Number, Obj, Text

PREFIX = "alertd/v1"
BUTTON_EVENTS = ("press", "heartbeat")
UNIT_EVENTS = ("location", "ack")
MAX_SKEW_S = int(validate.MAX_AHEAD.total_seconds())  # a ts further than this from the service's clock is refused
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
    unusable: tuple[str, ...] = ()  # optional fields present but out of range or malformed: left out

    @property
    def sent_at(self) -> datetime:
        """When the button says it sent the message (`ts`, checked against the clock on receipt)."""
        return datetime.fromtimestamp(self.ts, UTC)


def _json_object(payload: bytes) -> dict:
    try:
        body = validate.document(payload, "payload")
    except Malformed as exc:
        raise Refused("malformed_payload", exc.message) from None
    if not isinstance(body, dict):
        raise Refused("malformed_payload", "payload must be a JSON object")
    return body


def _required(kind: validate.Field, value: Any, name: str):
    try:
        return kind.parse(value, name)
    except Malformed as exc:
        raise Refused("malformed_payload", exc.message) from None


SEQ = Integer(1, MAX_SEQ)
TS = Integer(0, MAX_SEQ)
MAC = Text(64, 64, pattern="[0-9a-fA-F]{64}")
BATTERY = Number(0.0, 1.0)
GPS = Obj({"lat": Number(-90, 90), "lon": Number(-180, 180), "acc": Number(0, 1_000_000)}, required=("lat", "lon"))
CELL = Obj({"mcc": Integer(0, 999), "mnc": Integer(0, 999), "lac": Integer(0, 2**32), "cid": Integer(0, 2**40)},
           required=("mcc", "mnc", "lac", "cid"))


def parse_button(device_id: str, event: str, payload: bytes) -> ButtonMessage:
    """Check the shape of a press or heartbeat (not yet its MAC, time or seq).

    seq, ts and mac decide whether the message is authentic, so a message without them is refused. The other
    fields only help: one that is out of range or malformed (`"bat": 90`, a percentage) is left out and named in
    `unusable`, and the press still raises its alert.
    """
    if event not in BUTTON_EVENTS:
        raise Refused("bad_topic", f"unknown button event {event!r}")
    body = _json_object(payload)
    seq = _required(SEQ, body.get("seq"), "seq")
    ts = _required(TS, body.get("ts"), "ts")
    tag = _required(MAC, body.get("mac"), "mac")
    if event == "heartbeat" and body.get("bat") is None:
        raise Refused("malformed_payload", "a heartbeat carries bat")
    unusable: list[str] = []

    def optional(kind: validate.Field, key: str):
        if body.get(key) is None:
            return None
        try:
            return kind.parse(body[key], key)
        except Malformed:
            unusable.append(key)
            return None

    battery = optional(BATTERY, "bat")
    gps = cell = None
    if event == "press":
        if (loc := optional(GPS, "loc")) is not None:
            gps = (loc["lat"], loc["lon"], loc["acc"])
        if (tower := optional(CELL, "cell")) is not None:
            cell = (tower["mcc"], tower["mnc"], tower["lac"], tower["cid"])
    return ButtonMessage(device_id, event, seq, ts, tag.lower(), battery, gps, cell, tuple(unusable))


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


UNIT_LOCATION = Obj({"lat": Number(-90, 90), "lon": Number(-180, 180), "acc": Number(0, 1_000_000),
                     "ts": Integer(0, MAX_SEQ)}, required=("lat", "lon"))
UNIT_ACK = Obj({"dispatch_id": Text(1, 64), "status": validate.Choice(("acknowledged", "en_route", "on_scene",
                                                                      "resolved")),
                "note": Text(0, 2000)}, required=("dispatch_id",), defaults={"status": "acknowledged"})


def parse_unit_location(payload: bytes) -> UnitLocation:
    body = _required(UNIT_LOCATION, _json_object(payload), "payload")
    return UnitLocation(lat=body["lat"], lon=body["lon"], acc=body["acc"], ts=body["ts"])


@dataclass(frozen=True)
class UnitAck:
    dispatch_id: str
    status: str
    note: str | None


def parse_unit_ack(payload: bytes) -> UnitAck:
    """`{dispatch_id, status}` where status is acknowledged, en_route, on_scene or resolved."""
    body = _required(UNIT_ACK, _json_object(payload), "payload")
    return UnitAck(body["dispatch_id"], body["status"], body["note"])
