"""What a Traccar server forwards, read through the same validate fields as every channel. Pure: no I/O.

Event forwarding (`event.forward.url`) posts `{event, position?, device, geofence?, maintenance?}`; position
forwarding (`forward.url` with `forward.type` json) posts `{position, device}`. Traccar 6 writes times with
Jackson (`2026-11-26T12:00:00.000+00:00`); before Jackson 2.11 the offset had no colon (`+0000`), and both are
read. Every other field Traccar sends (speed, course, address, device name, ...) is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alertd.core import validate
from alertd.core.model import Location
from alertd.core.validate import Boolean, Integer, Malformed, Number, Obj, Text, Timestamp

MAX_ID = 2**63 - 1
SOS = "sos"
_NO_COLON = re.compile(r"([+-]\d{2})(\d{2})$")


class TraccarTime(Timestamp):
    """An RFC 3339 time, its offset written with or without a colon (older Jackson wrote `+0000`)."""

    def parse(self, value: Any, name: str) -> datetime:
        if isinstance(value, str) and len(value) <= 64:
            value = _NO_COLON.sub(r"\1:\2", value)
        return super().parse(value, name)


TIME = TraccarTime()
EVENT = Obj({
    "id": Integer(0, MAX_ID, description="Traccar's event id (0 when Traccar could not store the event)"),
    "type": Text(1, 64, description="alarm, deviceOnline, geofenceEnter, ... (only alarm can raise an alert)"),
    "eventTime": TraccarTime(description="when it happened; outside the clock rule's window, the receive time"),
    "positionId": Integer(0, MAX_ID),
    "attributes": Obj({"alarm": Text(0, 256, description="the alarm of an alarm event: sos raises her alert")}),
}, required=("type",))
POSITION = Obj({
    "id": Integer(0, MAX_ID),
    "latitude": Number(-90, 90), "longitude": Number(-180, 180),
    "accuracy": Number(0, 1_000_000, description="metres; 0 means unknown"),
    "fixTime": TraccarTime(description="when the fix was taken; outside the clock rule's window, the receive time"),
    "valid": Boolean(description="false: the device had no fix of its own (not GPS)"),
    "outdated": Boolean(description="true: Traccar copied the last known position (no location in this report)"),
}, required=("latitude", "longitude"))
DEVICE = Obj({
    "id": Integer(0, MAX_ID),
    "uniqueId": Text(1, 128, pattern=r"[\x21-\x7e]+", description="the tracker's identifier (IMEI) in Traccar"),
}, required=("uniqueId",))


class Forward(Obj):
    """Traccar's forwarded JSON: a device, and an event or a position (or both)."""

    def parse(self, value: Any, name: str = "body") -> dict[str, Any]:
        out = super().parse(value, name)
        if out["event"] is None and out["position"] is None:
            raise Malformed(name, "must hold an event or a position")
        return out

    def json_schema(self) -> dict:
        schema = super().json_schema()
        schema["anyOf"] = [{"required": ["event"], "properties": {"event": EVENT.schema()}},
                           {"required": ["position"], "properties": {"position": POSITION.schema()}}]
        return schema


FORWARD = Forward({"event": EVENT, "position": POSITION, "device": DEVICE}, required=("device",),
                  description="What Traccar forwards: {event, position?, device} or {position, device}")
_SOS_ALONE = Obj({"event": EVENT, "device": DEVICE}, required=("event", "device"))


@dataclass(frozen=True)
class Position:
    lat: float
    lon: float
    accuracy_m: float | None
    fix_time: datetime | None
    valid: bool
    outdated: bool

    def usable(self) -> bool:
        """False for a position that says nothing of where she is now: one Traccar copied from the last report
        (`outdated`), or (0, 0) without a fix (what GT06 devices send with no GPS)."""
        return not self.outdated and (self.valid or (self.lat, self.lon) != (0.0, 0.0))

    def location(self, now: datetime) -> Location | None:
        """Her location under the clock rule (fixTime outside its window: the receive time), or None."""
        if not self.usable():
            return None
        return Location(lat=self.lat, lon=self.lon, accuracy_m=self.accuracy_m or None,
                        source="gps" if self.valid else "network", fix_time=validate.believed(self.fix_time, now))


@dataclass(frozen=True)
class Forwarded:
    """One forwarded document, as alertd reads it."""

    unique_id: str
    event_type: str | None  # None: a position forward
    event_id: int | None  # None when Traccar gave none (0)
    event_time: datetime | None
    alarms: tuple[str, ...]
    position: Position | None
    unusable: tuple[str, ...] = ()  # parts of an SOS left out because they were malformed

    @property
    def sos(self) -> bool:
        """An SOS alarm: the only event that raises an alert (see docs/traccar.md for the other alarms)."""
        return self.event_type == "alarm" and SOS in self.alarms


def parse(raw: bytes | str) -> Forwarded:
    """A forwarded body, or Malformed (a 400): JSON through validate.document, then FORWARD's fields. An SOS is
    never refused over its position: a malformed one is left out (and named in `unusable`)."""
    doc = validate.document(raw)
    unusable: tuple[str, ...] = ()
    try:
        body = FORWARD.parse(doc)
    except Malformed as exc:
        if not exc.field.startswith("position") or not _is_sos(doc):
            raise
        body, unusable = {**_SOS_ALONE.parse(doc), "position": None}, ("position",)
    event, pos = body["event"], body["position"]
    position = None
    if pos is not None:
        position = Position(lat=pos["latitude"], lon=pos["longitude"], accuracy_m=pos["accuracy"],
                            fix_time=pos["fixTime"], valid=pos["valid"] is not False,
                            outdated=pos["outdated"] is True)
    alarms: tuple[str, ...] = ()
    if event is not None and event["attributes"] is not None and event["attributes"]["alarm"]:
        alarms = _alarms(event["attributes"]["alarm"])
    return Forwarded(
        unique_id=body["device"]["uniqueId"],
        event_type=event["type"] if event is not None else None,
        event_id=event["id"] or None if event is not None else None,
        event_time=event["eventTime"] if event is not None else None,
        alarms=alarms, position=position, unusable=unusable)


def _alarms(text: str) -> tuple[str, ...]:
    # Traccar joins a report's several alarms with commas (Position.addAlarm) before it splits them into one
    # event each; both forms are read.
    return tuple(a.strip() for a in text.split(",") if a.strip())


def _is_sos(doc: Any) -> bool:
    """Whether an unchecked document is an SOS alarm event (its event is checked again when parsed)."""
    event = doc.get("event") if isinstance(doc, dict) else None
    attributes = event.get("attributes") if isinstance(event, dict) else None
    alarm = attributes.get("alarm") if isinstance(attributes, dict) else None
    return event.get("type") == "alarm" and isinstance(alarm, str) and SOS in _alarms(alarm) \
        if isinstance(event, dict) else False
