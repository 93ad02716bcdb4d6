"""Repeats: while a person has an open alert, a new alert from any of her channels joins it instead of
dispatching again (a stuck button, a buggy app or a stolen token must not bury the responders).

A repeat is answered like an alert (with the open alert's id) and recorded: a `repeated` event, its idempotency
key (so a retry gets the same answer), the alert's priority raised once it has `repeat_priority_after` repeats,
and its location when that is better than the alert's (which may move its dispatches, as a new fix does).
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg

from alertd.context import Context
from alertd.core.location import best_location, moved_enough
from alertd.core.model import Location
from alertd.service import dispatching
from alertd.service.timeline import Batch
from alertd.store import queries

if TYPE_CHECKING:
    from alertd.service.intake import NewAlert


async def join(conn: asyncpg.Connection, ctx: Context, now: datetime,
               joins: list[tuple[NewAlert, uuid.UUID]]) -> None:
    """In the caller's transaction (which holds her person lock): each (alert sent in, open alert) as a repeat."""
    alert_ids = sorted({alert_id for _, alert_id in joins})
    alerts = {r["id"]: r for r in await conn.fetch(queries.lock_alerts, alert_ids)}
    if keyed := [(n, a) for n, a in joins if n.device_id is not None and n.client_alert_id is not None]:
        await conn.execute(queries.insert_repeats, now, [n.device_id for n, _ in keyed],
                           [n.client_alert_id for n, _ in keyed], [a for _, a in keyed], [n.channel for n, _ in keyed])
    batch = Batch(now)
    counts = Counter(alert_id for _, alert_id in joins)
    seen = {alert_id: alerts[alert_id]["repeats"] for alert_id in alert_ids}
    for new, alert_id in joins:
        seen[alert_id] += 1
        batch.event(alert_id, "repeated", channel=new.channel, repeat=seen[alert_id], stale_token=new.stale_token,
                    verified=new.verified, located=new.location is not None, **new.details)
    priorities = [_priority(ctx, batch, alerts[a], alerts[a]["repeats"] + counts[a]) for a in alert_ids]
    await conn.execute(queries.set_repeats, alert_ids, [seen[a] for a in alert_ids], priorities)
    if located := [(n.location, a) for n, a in joins if n.location is not None]:
        await conn.execute(queries.insert_fixes, now, [a for _, a in located], [f.lon for f, _ in located],
                           [f.lat for f, _ in located], [f.accuracy_m for f, _ in located],
                           [f.source for f, _ in located], [f.fix_time for f, _ in located])
        for alert_id in sorted({a for _, a in located}):
            alert = {**dict(alerts[alert_id]), "priority": priorities[alert_ids.index(alert_id)]}
            await _relocate(conn, ctx, batch, alert, [f for f, a in located if a == alert_id])
    await batch.flush(conn)


def _priority(ctx: Context, batch: Batch, alert, repeats: int) -> str:
    """High once the alert has enough repeats: she keeps pressing, so responders should hurry."""
    if alert["priority"] == "high" or repeats < ctx.settings.repeat_priority_after:
        return alert["priority"]
    batch.event(alert["id"], "priority_raised", reason="repeated", repeats=repeats)
    batch.tell_supervisor(alert["region"], "priority_raised", {"reason": "repeated", "repeats": repeats},
                          alert_id=alert["id"])
    return "high"


async def _relocate(conn: asyncpg.Connection, ctx: Context, batch: Batch, alert, fixes: list[Location]) -> None:
    """Her new location, if better than the alert's: the best of its best so far and the new fixes is the best
    of its whole trail (no need to read it again); a home is beaten by any fix."""
    old = Location.from_row(alert, "loc_")
    if old is None or old.source == "home":
        best = best_location(fixes, old, ctx.settings.accurate_fix_m)
    else:
        best = best_location([old, *fixes], None, ctx.settings.accurate_fix_m)
    if best is None or best == old:
        return
    if old is None:  # it was waiting in triage for a location
        await dispatching.dispatch_located(conn, ctx, batch, alert, best)
        return
    await dispatching.record_best(conn, batch, alert["id"], best)
    if moved_enough(old, best, ctx.settings.redispatch_min_move_m):
        await dispatching.redispatch_if_nearer(conn, ctx, batch, alert, best)
