"""Domain data: frozen dataclasses built from rows, and the vocabularies of statuses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

KINDS = ("police_post", "crisis_centre", "mobile_unit")
ALERT_STATUSES = ("open", "cancelled", "resolved", "unanswered")
DISPATCH_STATUSES = ("pending", "acknowledged", "expired", "en_route", "on_scene", "resolved", "cancelled")
# Dispatches that still hold a responder's attention.
ACTIVE_DISPATCH = ("pending", "acknowledged", "en_route", "on_scene")
OFFICER_STATUSES = ("en_route", "on_scene", "resolved")
LOCATION_SOURCES = ("gps", "network", "wifi", "cell", "aml", "sms_text", "home", "manual", "unit")


class DomainError(Exception):
    """A request the domain refuses; `code` is the contract's error code."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(DomainError):
    status, code = 400, "invalid"


class NotFound(DomainError):
    status, code = 404, "not_found"


class Conflict(DomainError):
    status, code = 409, "conflict"


class Unauthorized(DomainError):
    status, code = 401, "unauthorized"


class Forbidden(DomainError):
    status, code = 403, "forbidden"


class Refused(Exception):
    """A device message the service will not act on; `kind` names the security event it records."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.message = kind, message


@dataclass(frozen=True)
class Location:
    lat: float
    lon: float
    accuracy_m: float | None
    source: str
    fix_time: datetime

    def __post_init__(self) -> None:
        if not (-90.0 <= self.lat <= 90.0) or not (-180.0 <= self.lon <= 180.0):
            raise Invalid("lat must be within [-90, 90] and lon within [-180, 180]")
        if self.accuracy_m is not None and not (0 <= self.accuracy_m <= 1_000_000):
            raise Invalid("accuracy_m must be between 0 and 1000000")

    def as_json(self) -> dict[str, Any]:
        return {
            "lat": self.lat,
            "lon": self.lon,
            "accuracy_m": self.accuracy_m,
            "source": self.source,
            "fix_time": self.fix_time.isoformat(),
        }

    @classmethod
    def of_row(cls, row: Mapping[str, Any], prefix: str = "") -> Location:
        """The location of a row that always has one (a fix, an alert already located)."""
        if (location := cls.from_row(row, prefix)) is None:
            raise ValueError(f"the row has no {prefix}lat")
        return location

    @classmethod
    def from_row(cls, row: Mapping[str, Any], prefix: str = "") -> Location | None:
        if row[f"{prefix}lat"] is None:
            return None
        return cls(
            lat=row[f"{prefix}lat"],
            lon=row[f"{prefix}lon"],
            accuracy_m=row[f"{prefix}accuracy_m"],
            source=row[f"{prefix}source"],
            fix_time=row[f"{prefix}fix_time"],
        )


@dataclass(frozen=True)
class Responder:
    id: str
    kind: str
    name: str
    region: str
    lat: float
    lon: float
    distance_m: float | None = None
    phone: str | None = None
    language: str = "ru"
    has_terminal: bool = False

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Responder:
        return cls(
            id=row["id"], kind=row["kind"], name=row["name"], region=row["region"],
            lat=row["lat"], lon=row["lon"], distance_m=row.get("distance_m"), phone=row.get("phone"),
            language=row.get("language") or "ru", has_terminal=bool(row.get("has_terminal")),
        )

    @property
    def contacts(self) -> dict[str, Any]:
        """How to reach it: what the outbox needs to pick channels and a language."""
        return {"id": self.id, "phone": self.phone, "language": self.language, "has_terminal": self.has_terminal}


@dataclass(frozen=True)
class Dispatch:
    id: str
    alert_id: str
    kind: str
    responder_id: str
    status: str
    code: str
    ack_deadline: datetime
    acknowledged_at: datetime | None
    attempt: int
    late_ack: bool
    location: Location | None = None
    sms_delivery: str | None = None  # queued/sent/delivered/undelivered/failed... of its SMS; None: no SMS

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Dispatch:
        return cls(
            id=str(row["id"]), alert_id=str(row["alert_id"]), kind=row["kind"],
            responder_id=row["responder_id"], status=row["status"], code=row["code"],
            ack_deadline=row["ack_deadline"], acknowledged_at=row["acknowledged_at"],
            attempt=row["attempt"], late_ack=row["late_ack"],
            location=Location.from_row(row, "loc_") if "loc_lat" in row else None,
            sms_delivery=row.get("sms_delivery"),
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "alert_id": self.alert_id,
            "kind": self.kind,
            "responder_id": self.responder_id,
            "status": self.status,
            "code": self.code,
            "ack_deadline": self.ack_deadline.isoformat(),
            "acknowledged_at": self.acknowledged_at.isoformat() if self.acknowledged_at else None,
            "attempt": self.attempt,
            "late_ack": self.late_ack,
            "location": self.location.as_json() if self.location else None,
            "sms_delivery": self.sms_delivery,
        }
