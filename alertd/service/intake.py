"""Alert intake: raise alerts, add locations. Each call is one transaction; callers answer after it commits."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

import asyncpg

from alertd.context import Context
from alertd.core.location import best_location, moved_enough
from alertd.core.model import KINDS, Conflict, Location, NotFound, Responder, Unauthorized
from alertd.core.places import Relation
from alertd.service import dispatching, repeats
from alertd.service.group_commit import COALESCE_S, GATHER_S, GroupCommit
from alertd.service.timeline import Batch, security_event
from alertd.store import queries


@dataclass(frozen=True)
class Raised:
    """What became of one alert sent in: `made` is `created`, `joined` (a repeat of her open alert) or
    `duplicate` (its device sent this client_alert_id before); `alert_id` is the alert that stands for it. Or
    `refused`, with no alert: its device was left to intake to check (`device_checked=False`) and is not a live
    device of hers."""

    alert_id: str
    status: str
    made: str

    @property
    def created(self) -> bool:
        return self.made == "created"


@dataclass(frozen=True)
class NewAlert:
    """An alert to raise, from any channel. `details` adds channel details to its `raised` event. Only a drill's
    alert (create_drill_alert) has no person."""

    person_id: str | None
    device_id: str | None
    channel: str
    client_alert_id: str | None
    triggered_at: datetime
    location: Location | None = None
    stale_token: bool = False
    verified: bool = True
    details: Mapping[str, Any] = field(default_factory=dict)
    device_checked: bool = True  # False: check in the group's transaction that device_id is hers and not revoked

    @property
    def key(self) -> tuple[str, str] | None:
        """Its idempotency key, (device_id, client_alert_id), when it has one."""
        if self.device_id is None or self.client_alert_id is None:
            return None
        return self.device_id, self.client_alert_id


def group_committer(pool: asyncpg.Pool, ctx: Context, **options: Any) -> GroupCommit[NewAlert, Raised]:
    """App alerts committed in groups under load, each answered after its own group's commit."""
    return GroupCommit(pool, lambda conn, news: raise_group(conn, ctx, news), name="intake",
                       order=lambda n: (n.device_id or "", n.client_alert_id or ""), key=lambda n: n.person_id,
                       **{"coalesce_s": COALESCE_S, "gather_s": GATHER_S, **options})


async def raise_group(conn: asyncpg.Connection, ctx: Context, news: list[NewAlert]) -> list[Raised]:
    """In the caller's transaction: create_alerts."""
    return await create_alerts(conn, ctx, ctx.clock.now(), news)


async def create_alert(conn: asyncpg.Connection, ctx: Context, now: datetime, *, person_id: str,
                       device_id: str | None, channel: str, client_alert_id: str | None, triggered_at: datetime,
                       location: Location | None, stale_token: bool = False, verified: bool = True,
                       **details: Any) -> Raised:
    """create_alerts for one alert."""
    new = NewAlert(person_id, device_id, channel, client_alert_id, triggered_at, location, stale_token, verified,
                   details)
    return (await create_alerts(conn, ctx, now, [new]))[0]


async def create_alerts(conn: asyncpg.Connection, ctx: Context, now: datetime,
                        news: list[NewAlert]) -> list[Raised]:
    """In the caller's transaction: what becomes of each alert sent in, in order. Every channel raises alerts
    through here, one at a time or a group at once.

    Her people row is locked first (every group in the same order), so one person's alerts are decided one group
    at a time, on every instance: an alert whose device already sent its client_alert_id is a `duplicate` of
    the alert that stands; while she has an open alert (or an earlier one of this group is raising it), a new
    one `joined` it as a repeat (see `repeats`); otherwise it is `created`, located and dispatched.
    """
    if any(n.person_id is None for n in news):
        raise ValueError("an alert from a channel has a person (a drill's: create_drill_alert)")
    people = sorted({n.person_id for n in news if n.person_id is not None})
    unchecked = [n.device_id for n in news if not n.device_checked]
    rows = await conn.fetch(queries.lock_people_check_devices, people, unchecked)
    live = {(r["device_id"], r["person_id"]) for r in rows if r["device_id"] is not None}
    homes = {r["person_id"]: home for r in rows if r["device_id"] is None and (home := Location.from_row(r))}
    refused = [not n.device_checked and (n.device_id, n.person_id) not in live for n in news]
    kept = [n for n, r in zip(news, refused, strict=True) if not r]
    answers = iter(await _decide(conn, ctx, now, kept, homes) if kept else [])
    return [Raised("", "", "refused") if r else next(answers) for r in refused]


async def _decide(conn: asyncpg.Connection, ctx: Context, now: datetime, news: list[NewAlert],
                  homes: dict[str, Location]) -> list[Raised]:
    """create_alerts once her people row is locked (her registered home, if any, in `homes`) and every device is
    known to be hers: duplicate, joined or created, in order."""
    keys = [n.key for n in news if n.key is not None]
    rows = await conn.fetch(queries.find_alerts_by_keys_or_people, [d for d, _ in keys], [c for _, c in keys],
                            sorted({n.person_id for n in news if n.person_id is not None}))
    sent = {(r["device_id"], r["client_alert_id"]): (r["id"], r["status"]) for r in rows if r["found"] == "sent"}
    open_now = {r["person_id"]: (r["id"], r["status"]) for r in rows if r["found"] == "open"}
    outcomes: list[tuple[uuid.UUID, str, str]] = []
    for new in news:
        if new.key in sent:
            outcomes.append((*sent[new.key], "duplicate"))
            continue
        if new.person_id in open_now:
            outcomes.append((*open_now[new.person_id], "joined"))
        else:
            open_now[new.person_id] = (uuid.uuid4(), "open")
            outcomes.append((*open_now[new.person_id], "created"))
        if new.key is not None:
            sent[new.key] = outcomes[-1][:2]
    fresh = [i for i, (_, _, made) in enumerate(outcomes) if made == "created"]
    await _create(conn, ctx, now, [news[i] for i in fresh], [outcomes[i][0] for i in fresh], homes)
    if joins := [(news[i], outcomes[i][0]) for i, (_, _, made) in enumerate(outcomes) if made == "joined"]:
        await repeats.join(conn, ctx, now, joins)
    return [Raised(str(alert_id), status, made) for alert_id, status, made in outcomes]


async def create_drill_alert(conn: asyncpg.Connection, ctx: Context, now: datetime, new: NewAlert,
                             alert_id: uuid.UUID) -> None:
    """In the caller's transaction: a drill's alert (channel 'drill', no person, a location), created, located and
    dispatched by the path every alert takes, but outside any person's lock and repeats: it belongs to nobody, so
    nothing of hers can join it and it joins nothing of hers (docs/drills.md)."""
    if new.channel != "drill" or new.person_id is not None or new.device_id is not None or new.location is None:
        raise ValueError("a drill alert has channel 'drill', a location, and no person or device")
    await _create(conn, ctx, now, [new], [alert_id], {})


async def _create(conn: asyncpg.Connection, ctx: Context, now: datetime, news: list[NewAlert],
                  ids: list[uuid.UUID], homes: dict[str, Location]) -> None:
    """Each alert with its fix, its best location (and, with it, the region of the nearest police post) and its
    dispatches, with their outbox rows and timeline: the same statements (two: responders with their named
    places; every row, the timeline and the outbox), whatever the group's size. `homes`: the people's registered
    homes, for an alert with no fix (create_alerts reads them with the people's locks)."""
    if not news:
        return
    bests = [best_location([n.location] if n.location else [], homes.get(n.person_id or ""),
                           ctx.settings.accurate_fix_m) for n in news]
    located = {i: best for i, best in enumerate(bests) if best is not None}
    found: list[dict[str, Responder]] = [{} for _ in news]
    named: dict[Location, Relation | None] = {}  # the messages' named places, read with the responders
    for i, near in zip(located, await dispatching.nearest_at(conn, ctx, now, KINDS, list(located.values()),
                                                             near=named), strict=True):
        found[i] = near
    alerts = [{"id": alert_id, "region": dispatching.region_of(near), "priority": "normal", "duress": False}
              for alert_id, near in zip(ids, found, strict=True)]
    plan = dispatching.Plan.of(ctx, now, [a for i, best in located.items()
                                          for a in dispatching.assignments(alerts[i], best, found[i])])
    batch = Batch(now)
    for i, n in enumerate(news):
        batch.event(ids[i], "raised", channel=n.channel, stale_token=n.stale_token, verified=n.verified,
                    **n.details)
        if (best := bests[i]) is None:
            _to_triage(batch, ids[i])
            continue
        batch.event(ids[i], "located", source=best.source, accuracy_m=best.accuracy_m)
        dispatching.unstaffed(batch, alerts[i], found[i])
    dispatching.record(batch, plan, named)
    where = [(b.lon, b.lat, b.accuracy_m, b.source, b.fix_time) if b else (None,) * 5 for b in bests]
    made = await conn.fetch(
        queries.insert_alerts, now, ids, [n.person_id for n in news], [n.device_id for n in news],
        [n.channel for n in news], [n.client_alert_id for n in news], [n.triggered_at for n in news],
        [n.stale_token for n in news], [n.verified for n in news], [a["region"] for a in alerts],
        *map(list, zip(*where, strict=True)),
        *_fix_columns([(ids[i], n.location) for i, n in enumerate(news) if n.location]), *plan.columns(),
        *batch.columns())
    batch.written(made)
    created = {r["made_id"] for r in made if r["made"] == "alert"}
    if len(created) != len(ids):  # her person lock and the keys read under it make this impossible
        raise RuntimeError("an alert decided as new was already raised")
    inserted = {r["made_id"] for r in made if r["made"] == "dispatch"}
    if taken := [i for i, dispatch_id in enumerate(plan.ids) if dispatch_id not in inserted]:
        # A code already in use (27^6 of them): those dispatches, their events and their messages were skipped.
        again = plan.rows(taken)
        await dispatching.insert_planned(conn, now, again)
        dispatching.record(batch, again, named)
        await batch.flush(conn)


def _fix_columns(fixes: list[tuple[uuid.UUID, Location]]) -> list[list]:
    """insert_fixes' columns: alert ids, lons, lats, accuracies, sources, fix times."""
    return [[alert_id for alert_id, _ in fixes], [f.lon for _, f in fixes], [f.lat for _, f in fixes],
            [f.accuracy_m for _, f in fixes], [f.source for _, f in fixes], [f.fix_time for _, f in fixes]]


def _to_triage(batch: Batch, alert_id) -> None:
    batch.event(alert_id, "triage", reason="no usable location")
    batch.tell_supervisor(None, "triage", {"reason": "no usable location"}, alert_id=alert_id)


async def _best(conn: asyncpg.Connection, ctx: Context, person_id: str, fixes: list[Location]) -> Location | None:
    """The best of her fixes; her registered home only when there is no fix at all (read only then)."""
    home = None
    if not fixes:
        homes = await conn.fetch(queries.find_people_homes, [person_id])
        home = Location.from_row(homes[0]) if homes else None
    return best_location(fixes, home, ctx.settings.accurate_fix_m)


async def open_alert_of(conn: asyncpg.Connection, alert_id: str, person_id: str):
    """Lock an alert of this person; someone else's alert is 'not found', exactly like a missing one."""
    try:
        key = uuid.UUID(alert_id)
    except ValueError:
        raise NotFound("no such alert") from None
    alert = await conn.fetchrow(queries.lock_alert, key)
    if alert is None or alert["person_id"] != person_id:
        raise NotFound("no such alert")
    return alert


async def stale_token_may_act(conn: asyncpg.Connection, alert, device_id: str | None) -> bool:
    """An expired device token may finish what it started: act on the alert its own device raised (or joined as a
    repeat), nothing else."""
    return device_id is not None and await conn.fetchval(queries.check_device_sent_alert, alert["id"], device_id)


async def refuse_stale_token(conn: asyncpg.Connection, now: datetime, alert, device_id: str | None,
                             source: str) -> NoReturn:
    """Record and refuse an expired token acting on an alert its device did not send (after the transaction)."""
    await security_event(conn, now, "stale_token", source, alert_id=str(alert["id"]), device_id=device_id)
    raise Unauthorized("token expired: it acts only on the alert its own device sent")


async def add_locations(pool: asyncpg.Pool, ctx: Context, *, alert_id: str, person_id: str,
                        fixes: list[Location], device_id: str | None = None, stale_token: bool = False,
                        source: str = "http") -> dict:
    """Append fixes; if the best location changes, record it, and re-dispatch kinds that now have a nearer responder.

    With an expired token (stale_token), only to an alert its own device sent; the fixes are marked stale.
    """
    async with pool.acquire() as conn:
        now = ctx.clock.now()
        async with conn.transaction():
            alert = await open_alert_of(conn, alert_id, person_id)
            if not stale_token or await stale_token_may_act(conn, alert, device_id):
                return await _add_locations(conn, ctx, now, alert, person_id, fixes, stale_token)
        await refuse_stale_token(conn, now, alert, device_id, source)


async def _add_locations(conn: asyncpg.Connection, ctx: Context, now: datetime, alert, person_id: str,
                         fixes: list[Location], stale_token: bool) -> dict:
    if alert["status"] not in ("open", "unanswered"):
        raise Conflict(f"alert is {alert['status']}")
    await conn.execute(queries.insert_fixes, now, *_fix_columns([(alert["id"], fix) for fix in fixes]))
    old = Location.from_row(alert, "loc_")
    trail = [Location.of_row(r) for r in await conn.fetch(queries.list_alert_fixes, alert["id"])]
    best = await _best(conn, ctx, person_id, trail)
    batch = Batch(now)
    if stale_token:
        batch.event(alert["id"], "location", fixes=len(fixes), stale_token=True)
    else:
        batch.event(alert["id"], "location", fixes=len(fixes))
    if best is not None and best != old:
        if old is None:  # it was waiting in triage for a location
            await dispatching.dispatch_located(conn, ctx, batch, alert, best)
        else:
            await dispatching.record_best(conn, batch, alert["id"], best)
            if moved_enough(old, best, ctx.settings.redispatch_min_move_m):
                await dispatching.redispatch_if_nearer(conn, ctx, batch, alert, best)
    await batch.flush(conn)
    return {"alert_id": str(alert["id"]), "status": alert["status"], "accepted": len(fixes)}
