"""The unit terminals' wire protocol: topics and payload checks. Pure: no I/O.

Unit messages carry no signature: the broker authenticates each terminal (docs/buttons.md). Parsed messages go
to the service as typed values.
"""

from __future__ import annotations

from alertd.channels.mqtt_wire import MAX_SEQ, PREFIX, json_object, required
from alertd.core import validate
from alertd.core.model import Refused
from alertd.core.validate import Integer, Number, Obj, Text
from alertd.service.units import UnitAck, UnitLocation

UNIT_EVENTS = ("location", "ack")
SUBSCRIPTIONS = tuple(f"$share/alertd/{PREFIX}/units/+/{e}" for e in UNIT_EVENTS)


def unit_topic(unit_id: str, leaf: str) -> str:
    return f"{PREFIX}/units/{unit_id}/{leaf}"


UNIT_LOCATION = Obj({"lat": Number(-90, 90), "lon": Number(-180, 180), "acc": Number(0, 1_000_000),
                     "ts": Integer(0, MAX_SEQ)}, required=("lat", "lon"))
UNIT_ACK = Obj({"dispatch_id": Text(1, 64), "status": validate.Choice(("acknowledged", "en_route", "on_scene",
                                                                      "resolved")),
                "note": Text(0, 2000)}, required=("dispatch_id",), defaults={"status": "acknowledged"})


def parse_unit_location(payload: bytes) -> UnitLocation:
    body = required(UNIT_LOCATION, json_object(payload), "payload")
    return UnitLocation(lat=body["lat"], lon=body["lon"], acc=body["acc"], ts=body["ts"])


def parse_unit_ack(payload: bytes) -> UnitAck:
    """`{dispatch_id, status}` where status is acknowledged, en_route, on_scene or resolved."""
    body = required(UNIT_ACK, json_object(payload), "payload")
    return UnitAck(body["dispatch_id"], body["status"], body["note"])


def parse(leaf: str, payload: bytes) -> UnitLocation | UnitAck:
    """A unit's `location` or `ack` message; Refused if it is neither or malformed."""
    if leaf not in UNIT_EVENTS:
        raise Refused("bad_topic", f"unknown unit event {leaf!r}")
    return parse_unit_location(payload) if leaf == "location" else parse_unit_ack(payload)
