"""Test helpers: seed responders and people, issue tokens, drive the engine."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
from datetime import datetime

from alertd import auth
from alertd.core.model import Location
from alertd.service.people import enrol_person

# The dynamic-security admin and alertd's own account on every broker the tests start (each secured as in
from alertd.service.responders import ResponderRecord, upsert_responders

# The dynamic-security admin and alertd's own account on every broker the tests start (each secured as in
# production: no anonymous clients, a role per device).
BROKER_ADMIN = ("admin", "admin-" + secrets.token_hex(8))
BROKER_SERVICE = ("alertd", "svc-" + secrets.token_hex(8))

# A small rural area around (50.0 N, 70.0 E); responders placed at known distances.
BASE_LAT, BASE_LON = 50.0, 70.0


def offset(km_north: float = 0.0, km_east: float = 0.0) -> tuple[float, float]:
    """A point this many km north/east of the base (good to ~0.1% at these distances)."""
    import math

    lat = BASE_LAT + km_north / 111.195
    lon = BASE_LON + km_east / (111.195 * math.cos(math.radians(BASE_LAT)))
    return lat, lon


def responder(id_: str, kind: str, km_north: float, km_east: float = 0.0, region: str = "north", **kw):
    lat, lon = offset(km_north, km_east)
    return ResponderRecord(id=id_, kind=kind, name=f"{kind} {id_}", lat=lat, lon=lon, region=region, **kw)


STANDARD = [
    responder("pol-1", "police_post", 2),
    responder("pol-2", "police_post", 5),
    responder("pol-3", "police_post", 9),
    responder("pol-4", "police_post", 14),
    responder("cc-1", "crisis_centre", 3, phone="+77010000001"),
    responder("cc-2", "crisis_centre", 8),
    responder("mu-1", "mobile_unit", 4),
    responder("mu-2", "mobile_unit", 6),
]


async def seed_responders(conn, records=None):
    return await upsert_responders(conn, list(records or STANDARD))


async def enrol(conn, now: datetime, *, phone: str | None = None, home=None, pin="1234", duress_pin="9999",
                code_phrase=None, opt_in_sms=False):
    home_loc = Location(home[0], home[1], 50.0, "home", now) if home else None
    return await enrol_person(conn, now, phones=[phone or f"+7701{uuid.uuid4().int % 10**7:07d}"],
                              home=home_loc, pin=pin, duress_pin=duress_pin, code_phrase=code_phrase,
                              opt_in_sms=opt_in_sms)


def device_token(settings, enrolled, now: datetime, ttl_s: int = 3600) -> str:
    return auth.issue(settings, role="device", sub=enrolled.device_id, ttl_s=ttl_s, now=now,
                      person_id=enrolled.person_id, device_id=enrolled.device_id)


def officer_token(settings, responder_id: str, now: datetime, role: str = "officer", ttl_s: int = 3600) -> str:
    return auth.issue(settings, role=role, sub=f"officer-{responder_id}", ttl_s=ttl_s, now=now,
                      responder_id=responder_id)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def fix(lat: float, lon: float, accuracy_m: float = 20.0, when: datetime | None = None, source: str = "gps") -> dict:
    doc = {"lat": lat, "lon": lon, "accuracy_m": accuracy_m, "source": source}
    if when is not None:
        doc["fix_time"] = when.isoformat()
    return doc


@contextlib.asynccontextmanager
async def running_app(settings, clock, *, run_engine: bool = False):
    """The whole service on a test server with this clock; without its engine, tests drive app[ENGINE] by hand."""
    from aiohttp.test_utils import TestClient, TestServer

    from alertd.app import create_app

    client = TestClient(TestServer(create_app(settings, clock, run_engine=run_engine)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def all_at_once(committer, items: list) -> list:
    """Queue every item on a GroupCommit before it starts, so that they make one group; each item's answer (or
    the exception it got), in order."""
    tasks = [asyncio.create_task(committer.submit(item)) for item in items]
    await asyncio.sleep(0)
    committer.start()
    try:
        return await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await committer.stop()


async def refusals(db, kind: str | None = None) -> int:
    """How many refusals were recorded (of this kind): an event counts every refusal of its episode."""
    return await db.fetchval("SELECT coalesce(sum(refusals), 0) FROM security_events "
                             "WHERE $1::text IS NULL OR kind = $1", kind)


async def close_open_alerts(db) -> None:
    """Resolve every open alert, as responders would: her next alert is a new one, not a repeat of the last."""
    await db.execute("UPDATE alerts SET status = 'resolved', closed_at = now() WHERE status IN ('open', 'unanswered')")


def app_alert(person, cid: str, clock, km_north: float | None = 1.0, accuracy_m: float = 20.0):
    """An app alert of this enrolled person for the intake (service.intake.NewAlert), with a GPS fix km_north of
    the test region's centre (None: no fix), raised at clock.now()."""
    from alertd.service.intake import NewAlert

    where = None if km_north is None else Location(*offset(km_north), accuracy_m, "gps", clock.now())
    return NewAlert(person_id=person.person_id, device_id=person.device_id, channel="app", client_alert_id=cid,
                    triggered_at=clock.now(), location=where)
