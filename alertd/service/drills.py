"""Drills (docs/drills.md): a drill alert at a point or at a person, dispatched to real responders by the normal
path, every message to them marked DRILL; ended by hand (standing down what is still open) or when every dispatch
is resolved; and its report.

A drill alert belongs to nobody (person_id NULL, channel 'drill'): a person drill is only held where she is (her
last fix, else her home). Nothing is ever sent to her phone or device, nothing of hers joins the drill and the
drill joins nothing of hers, and no statistic of real alerts counts it (they filter on alerts.drill).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from alertd.context import Context
from alertd.core import drills as figures
from alertd.core.model import KINDS, Conflict, Forbidden, Invalid, Location, NotFound
from alertd.service import dispatching, intake
from alertd.service.timeline import Batch, security_event
from alertd.store import queries

POINT_ACCURACY_M = 10.0  # a point chosen on the map is where the drill is: as exact as a good GPS fix
MAX_PERIOD_DRILLS = 10_000
DEFAULT_PERIOD = timedelta(days=30)


@dataclass(frozen=True)
class Scope:
    """Who asks: an admin or the command line (region None) sees and starts drills anywhere, a supervisor only in
    their own region."""

    actor: str
    region: str | None = None
    source: str = "api"


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFound("no such drill") from None


async def _place_of_person(conn: asyncpg.Connection, now: datetime, person_id: str) -> Location:
    row = await conn.fetchrow(queries.find_drill_place, person_id)
    if row is None:
        raise NotFound("no such person")
    if row["lat"] is None:
        raise Conflict("she has no known fix and no registered home: choose a point for the drill instead")
    source = "home" if row["origin"] == "home" else "manual"
    return Location(row["lat"], row["lon"], row["accuracy_m"], source, now)


async def start(pool: asyncpg.Pool, ctx: Context, scope: Scope, *, lat: float | None = None,
                lon: float | None = None, person_id: str | None = None) -> dict:
    """Start a drill at a point (lat, lon) or at a person; {drill_id, alert_id}. A supervisor's drill must fall in
    their region (the region of its nearest police post, as any alert's): otherwise 403, recorded, nothing made."""
    if (person_id is None) == (lat is None or lon is None):
        raise Invalid("give either lat and lon, or person_id")
    async with pool.acquire() as conn:
        now = ctx.clock.now()
        async with conn.transaction():
            if person_id is not None:
                loc = await _place_of_person(conn, now, person_id)
            else:
                assert lat is not None and lon is not None
                loc = Location(lat, lon, POINT_ACCURACY_M, "manual", now)
            found = await dispatching.nearest_each(conn, ctx, now, KINDS, loc)
            region = dispatching.region_of(found)
            if not found:
                raise Conflict("nobody is on duty near there: there is no one to drill")
            if scope.region is None or region == scope.region:
                drill_id, alert_id = uuid.uuid4(), uuid.uuid4()
                target = "person" if person_id is not None else "place"
                new = intake.NewAlert(None, None, "drill", None, now, loc,
                                      details={"drill_id": str(drill_id), "target": target})
                await intake.create_drill_alert(conn, ctx, now, new, alert_id)
                await conn.execute(queries.insert_drill, drill_id, alert_id, scope.actor, now, region, target,
                                   person_id)
                batch = Batch(now)
                batch.event(alert_id, "drill_started", actor=scope.actor, drill_id=str(drill_id), target=target)
                await batch.flush(conn)
                await conn.execute(queries.insert_audit, now, scope.actor, "drill_started", alert_id,
                                   {"drill_id": str(drill_id), "target": target, "person_id": person_id})
                return {"drill_id": str(drill_id), "alert_id": str(alert_id), "region": region}
        await security_event(conn, now, "drill_out_of_region", scope.source, actor=scope.actor,
                             region=scope.region)
    raise Forbidden(f"a supervisor starts drills in their own region ({scope.region}); this one falls in "
                    f"another")


async def end(pool: asyncpg.Pool, ctx: Context, scope: Scope, drill_id: str) -> dict:
    """End a drill by hand: every dispatch not resolved is stood down (cancelled) with a drill-ended message, and
    its alert resolved; the report. Ending an ended drill changes nothing."""
    key = _uuid(drill_id)
    async with pool.acquire() as conn:
        async with conn.transaction():
            now = ctx.clock.now()
            alert_id = await conn.fetchval(queries.find_drill_alert, key, scope.region)
            if alert_id is None:
                raise NotFound("no such drill")
            alert = await conn.fetchrow(queries.lock_alert, alert_id)  # the alert first, as every writer
            drill = await conn.fetchrow(queries.lock_drill, key)
            if drill["ended_at"] is None and alert["status"] in ("open", "unanswered"):
                batch = Batch(now)
                for d in await conn.fetch(queries.list_drill_open_dispatches, alert_id):
                    await conn.execute(queries.set_dispatch_status, d["id"], "cancelled", "drill ended", now)
                    contacts = await conn.fetchrow(queries.get_responder_contacts, d["responder_id"])
                    if contacts is not None:
                        batch.tell(contacts, "drill_ended", {"code": d["code"]}, alert_id=alert_id,
                                   dispatch_id=d["id"])
                await conn.execute(queries.set_alert_status, alert_id, "resolved", now)
                batch.event(alert_id, "drill_ended", actor=scope.actor, drill_id=str(key))
                await batch.flush(conn)
                await conn.execute(queries.end_drill, key, now, scope.actor)
                await conn.execute(queries.insert_audit, now, scope.actor, "drill_ended", alert_id,
                                   {"drill_id": str(key)})
        return await _report(conn, ctx.clock.now(), key, scope.region)


async def report(pool: asyncpg.Pool, ctx: Context, scope: Scope, drill_id: str) -> dict:
    """A drill's report: per responder dispatched, time to acknowledge against the deadline, escalation and SMS
    delivery; and its totals."""
    key = _uuid(drill_id)
    async with pool.acquire() as conn:
        return await _report(conn, ctx.clock.now(), key, scope.region)


def _drill_json(row) -> dict:
    return {
        "drill_id": str(row["id"]), "alert_id": str(row["alert_id"]), "started_by": row["started_by"],
        "started_at": row["started_at"].isoformat(),
        "ended_at": row["ended_at"].isoformat() if row["ended_at"] else None, "ended_by": row["ended_by"],
        "running": row["ended_at"] is None, "region": row["region"], "target": row["target"],
        "person_id": row["person_id"], "alert_status": row["alert_status"],
        "location": None if row["lat"] is None else {"lat": round(row["lat"], 3), "lon": round(row["lon"], 3)},
    }


async def _report(conn: asyncpg.Connection, now: datetime, key: uuid.UUID, region: str | None) -> dict:
    row = await conn.fetchrow(queries.get_drill, key, region)
    if row is None:
        raise NotFound("no such drill")
    lines = [figures.dispatch_line(d, now) for d in await conn.fetch(queries.list_drill_dispatches, [row["alert_id"]])]
    return {**_drill_json(row), "responders": lines, "totals": figures.totals(lines)}


async def period(pool: asyncpg.Pool, ctx: Context, scope: Scope, *, since: datetime, until: datetime | None = None,
                 region: str | None = None) -> dict:
    """Every drill started in [since, until) (of a region), each with its totals, and the figures over all of them:
    the share acknowledged within the deadline and within 60 s, against their targets (docs/drills.md)."""
    now = ctx.clock.now()  # an until before since is an empty period, not an error
    if scope.region is not None:
        region = scope.region
    async with pool.acquire() as conn:
        rows = await conn.fetch(queries.list_drills, since, until, region, MAX_PERIOD_DRILLS)
        dispatches = await conn.fetch(queries.list_drill_dispatches, [r["alert_id"] for r in rows])
    by_alert: dict[uuid.UUID, list[dict]] = {}
    for d in dispatches:
        by_alert.setdefault(d["alert_id"], []).append(figures.dispatch_line(d, now))
    items = [{**_drill_json(r), "totals": figures.totals(by_alert.get(r["alert_id"], []))} for r in rows]
    everything = [line for r in rows for line in by_alert.get(r["alert_id"], [])]
    return {"since": since.isoformat(), "until": (until or now).isoformat(), "region": region, "drills": len(items),
            "totals": figures.totals(everything), "items": items}
