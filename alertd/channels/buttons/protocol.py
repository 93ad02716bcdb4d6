"""The buttons' wire protocol: topics, payload checks and the message MAC. Pure: no I/O.

It hands the service typed `ButtonMessage`s, never bytes; the service checks them against the stored button."""

from __future__ import annotations

from alertd.channels.mqtt_wire import MAX_SEQ, PREFIX, json_object, required
from alertd.core import validate
from alertd.core.model import Refused
from alertd.core.validate import Integer, Malformed, Number, Obj, Text
from alertd.service.buttons import ButtonMessage, Inbound, hmac_hex

BUTTON_EVENTS = ("press", "heartbeat", "test")  # a test proves the button works and dispatches nothing
# Shared subscriptions: several `alertd serve` split the messages; leaves are named so the service never
# receives its own acks back.
SUBSCRIPTIONS = tuple(f"$share/alertd/{PREFIX}/buttons/+/{e}" for e in BUTTON_EVENTS)


def button_topic(device_id: str, leaf: str) -> str:
    return f"{PREFIX}/buttons/{device_id}/{leaf}"


def signed(device_id: str, event: str, seq: int, ts: int) -> str:
    """What a message's MAC covers: the event name is in it, so a press can never pass for a heartbeat or a test,
    nor a test for a press."""
    return f"{device_id}|{event}|{seq}|{ts}"


def mac(secret_hex: str, device_id: str, event: str, seq: int, ts: int) -> str:
    """Lowercase hex HMAC-SHA256 of "{device_id}|{event}|{seq}|{ts}", keyed with the button's secret."""
    return hmac_hex(secret_hex, signed(device_id, event, seq, ts))


SEQ = Integer(1, MAX_SEQ)
TS = Integer(0, MAX_SEQ)
MAC = Text(64, 64, pattern="[0-9a-fA-F]{64}")
BATTERY = Number(0.0, 1.0)
GPS = Obj({"lat": Number(-90, 90), "lon": Number(-180, 180), "acc": Number(0, 1_000_000)}, required=("lat", "lon"))
CELL = Obj({"mcc": Integer(0, 999), "mnc": Integer(0, 999), "lac": Integer(0, 2**32), "cid": Integer(0, 2**40)},
           required=("mcc", "mnc", "lac", "cid"))


def parse_button(device_id: str, event: str, payload: bytes) -> ButtonMessage:
    """Check the shape of a press, test or heartbeat (not yet its MAC, time or seq).

    seq, ts and mac decide whether the message is authentic, so a message without them is refused. The other
    fields only help: one that is out of range or malformed (`"bat": 90`, a percentage) is left out and named in
    `unusable`, and the press still raises its alert.
    """
    if event not in BUTTON_EVENTS:
        raise Refused("bad_topic", f"unknown button event {event!r}")
    body = json_object(payload)
    seq = required(SEQ, body.get("seq"), "seq")
    ts = required(TS, body.get("ts"), "ts")
    tag = required(MAC, body.get("mac"), "mac")
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
    return ButtonMessage(device_id, event, seq, ts, tag.lower(), signed(device_id, event, seq, ts), battery, gps,
                         cell, tuple(unusable))


def authentic(message: ButtonMessage, secret_hex: str) -> bool:
    return message.authentic(secret_hex)


def check_button(message: ButtonMessage, secret_hex: str, now_ts: float) -> None:
    """Refuse a forged MAC or a ts more than 10 minutes from now (seq is checked against the stored one)."""
    message.check(secret_hex, now_ts)


def inbound(device_id: str, event: str, payload: bytes, *, via: str = "mqtt") -> Inbound:
    """A message off the wire, for the service: parsed, or the reason it cannot be."""
    try:
        return Inbound(device_id, via, message=parse_button(device_id, event, payload))
    except Refused as refused:
        return Inbound(device_id, via, refused=refused)
