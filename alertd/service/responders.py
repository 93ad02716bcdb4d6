"""The responder directory: police posts, crisis centres and mobile units, created or updated by id."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from alertd.core.model import KINDS, Invalid
from alertd.service.people import check_phone
from alertd.store import queries


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
    """Create or update responders by id, all or nothing; then fresh planner statistics for the table.

    Autovacuum analyzes a changed table only at its next round (a minute or more later): until then the planner
    takes a freshly imported directory for an empty table, and the nearest query scans and sorts every responder
    of a kind on each alert instead of walking the GiST index (bench/sustained.py: 35-60 ms a call at 3,000).
    """
    counts = {"created": 0, "updated": 0}
    async with conn.transaction():
        for r in records:
            inserted = await conn.fetchval(queries.upsert_responder, r.id, r.kind, r.name, r.region, r.lat, r.lon,
                                           r.jurisdiction, r.on_duty, r.phone, r.language)
            counts["created" if inserted else "updated"] += 1
        await conn.execute(queries.update_responder_statistics)
    return counts
