"""Enrol people and their phone app devices; keep the responder directory."""

from __future__ import annotations

import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from alertd.core.model import KINDS, Invalid, Location
from alertd.service.pins import check_pin_rules, hash_pin
from alertd.store import queries

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_ID_ALPHABET = "346789ABCDEFGHJKMNPQRTUVWXY"


def new_id(prefix: str, length: int = 8) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def normalise_phrase(text: str) -> str:
    """Casefold and strip accents (й -> и, ё -> е, ә -> а), so matching forgives how a phrase is typed."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.split())


def check_phone(phone: str) -> str:
    phone = phone.strip().replace(" ", "")
    if not _E164.match(phone):
        raise Invalid(f"phone must be E.164 (+ and 7 to 15 digits), got {phone[:4]}...")
    return phone


@dataclass(frozen=True)
class Enrolled:
    person_id: str
    device_id: str


async def enrol_person(conn: asyncpg.Connection, now: datetime, *, phones: list[str], home: Location | None = None,
                       pin: str | None = None, duress_pin: str | None = None, code_phrase: str | None = None,
                       opt_in_sms: bool = False, region: str | None = None) -> Enrolled:
    """A person, her phone numbers and a phone app device, in one transaction."""
    check_pin_rules(pin, duress_pin)
    phones = [check_phone(p) for p in phones]
    person_id, device_id = new_id("P-"), new_id("D-", 10)
    async with conn.transaction():
        await conn.execute(
            queries.insert_person, person_id, hash_pin(pin) if pin else None,
            hash_pin(duress_pin) if duress_pin else None, home.lat if home else None, home.lon if home else None,
            home.accuracy_m if home else None, normalise_phrase(code_phrase) if code_phrase else None,
            opt_in_sms, region)
        for phone in phones:
            try:
                await conn.execute(queries.insert_person_phone, phone, person_id)
            except asyncpg.UniqueViolationError:
                raise Invalid("that phone number is already enrolled") from None
        await conn.execute(queries.insert_device, device_id, person_id, "phone", now)
    return Enrolled(person_id, device_id)


@dataclass(frozen=True)
class ResponderRecord:
    id: str
    kind: str
    name: str
    lat: float
    lon: float
    region: str
    phone: str | None = None
    jurisdiction: str | None = None  # GeoJSON geometry text
    on_duty: bool = True
    language: str = "ru"

    def __post_init__(self) -> None:
        if not self.id or len(self.id) > 64:
            raise Invalid("id must be 1 to 64 characters")
        if self.kind not in KINDS:
            raise Invalid(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not self.name:
            raise Invalid("name is required")
        if not self.region:
            raise Invalid("region is required")
        if not -90 <= self.lat <= 90:
            raise Invalid(f"lat must be between -90 and 90 degrees, got {self.lat}")
        if not -180 <= self.lon <= 180:
            raise Invalid(f"lon must be between -180 and 180 degrees, got {self.lon}")
        if self.language not in ("kk", "ru", "en"):
            raise Invalid(f"language must be kk, ru or en, got {self.language!r}")
        if self.phone is not None:  # SMS acknowledgements are matched on it exactly: store it as Twilio sends it
            object.__setattr__(self, "phone", check_phone(self.phone))


async def upsert_responders(conn: asyncpg.Connection, records: list[ResponderRecord]) -> dict[str, int]:
    """Create or update responders by id, all or nothing."""
    counts = {"created": 0, "updated": 0}
    async with conn.transaction():
        for r in records:
            inserted = await conn.fetchval(queries.upsert_responder, r.id, r.kind, r.name, r.region, r.lat, r.lon,
                                           r.jurisdiction, r.on_duty, r.phone, r.language)
            counts["created" if inserted else "updated"] += 1
    return counts
