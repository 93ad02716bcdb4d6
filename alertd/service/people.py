"""Enrol people and their phone app devices."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from alertd.core.ids import new_id
from alertd.core.model import Invalid, Location
from alertd.service.pins import check_pin_rules, hash_pin
from alertd.store import queries

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


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
