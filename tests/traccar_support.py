"""What a Traccar 6 server posts, written from its models (org.traccar.model.Event, Position, Device) and its
forwarders (EventForwarderJson posts EventData {event, position, device, geofence?, maintenance?} with null
members left out; PositionForwarderJson posts PositionData {position, device}). Times are Jackson's
java.util.Date form, `yyyy-MM-dd'T'HH:mm:ss.SSS+00:00`; Traccar leaves every other null field in."""

from __future__ import annotations

from datetime import datetime, timedelta

IMEI = "359339077003123"


def jackson_time(when: datetime) -> str:
    """A java.util.Date as Traccar 6's Jackson writes it (UTC, milliseconds, offset with a colon)."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+00:00"


def device(unique_id: str = IMEI, device_id: int = 12) -> dict:
    return {"id": device_id, "attributes": {}, "groupId": 0, "calendarId": 0, "name": "SOS watch",
            "uniqueId": unique_id, "status": "online", "lastUpdate": "2026-11-26T11:59:58.000+00:00",
            "positionId": 90411, "phone": None, "model": "Q50", "contact": None, "category": "person",
            "disabled": False, "expirationTime": None}


def position(lat: float, lon: float, when: datetime, *, position_id: int = 90411, accuracy: float = 0.0,
             valid: bool = True, outdated: bool = False, alarm: str | None = None, device_id: int = 12) -> dict:
    attributes = {"batteryLevel": 64, "rssi": 4, "distance": 0.0, "totalDistance": 18234.5, "motion": False}
    if alarm is not None:
        attributes["alarm"] = alarm
    return {"id": position_id, "attributes": attributes, "deviceId": device_id, "protocol": "gt06",
            "serverTime": jackson_time(when + timedelta(seconds=1)), "deviceTime": jackson_time(when),
            "fixTime": jackson_time(when), "outdated": outdated, "valid": valid, "latitude": lat,
            "longitude": lon, "altitude": 0.0, "speed": 0.0, "course": 0.0, "address": None,
            "accuracy": accuracy, "network": None, "geofenceIds": None}


def event(type_: str, event_id: int, when: datetime, *, alarm: str | None = None, position_id: int = 90411,
          geofence_id: int = 0, device_id: int = 12) -> dict:
    return {"id": event_id, "attributes": {"alarm": alarm} if alarm is not None else {}, "deviceId": device_id,
            "type": type_, "eventTime": jackson_time(when), "positionId": position_id, "geofenceId": geofence_id,
            "maintenanceId": 0}


def alarm(alarm_: str, event_id: int, lat: float, lon: float, when: datetime, unique_id: str = IMEI,
          **position_options) -> dict:
    """An `alarm` event with the position that carried it (what a watch's SOS button makes)."""
    return {"event": event("alarm", event_id, when, alarm=alarm_),
            "position": position(lat, lon, when, alarm=alarm_, **position_options), "device": device(unique_id)}


def device_online(event_id: int, when: datetime, unique_id: str = IMEI) -> dict:
    """A status event: no position at all (EventData leaves the member out)."""
    return {"event": event("deviceOnline", event_id, when, position_id=0), "device": device(unique_id)}


def geofence_enter(event_id: int, lat: float, lon: float, when: datetime, unique_id: str = IMEI) -> dict:
    return {"event": event("geofenceEnter", event_id, when, geofence_id=3),
            "position": position(lat, lon, when), "device": device(unique_id),
            "geofence": {"id": 3, "attributes": {}, "calendarId": 0, "name": "Home", "description": None,
                         "area": "CIRCLE (50.0 70.0, 200)"}}


def position_forward(lat: float, lon: float, when: datetime, unique_id: str = IMEI, **options) -> dict:
    """Position forwarding (forward.url with forward.type json): a position and its device, no event."""
    return {"position": position(lat, lon, when, **options), "device": device(unique_id)}
