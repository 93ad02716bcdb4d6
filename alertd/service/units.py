"""Mobile-unit terminals: a location report moves the unit; an ack or status goes through the officer workflow."""

from __future__ import annotations

import logging

import asyncpg

from alertd.core.model import Conflict, DomainError, NotFound
from alertd.mqtt import protocol
from alertd.mqtt.protocol import Refused
from alertd.service import officer
from alertd.service.context import Context
from alertd.service.timeline import security_event
from alertd.store import queries

log = logging.getLogger("alertd.units")


async def _refuse(pool: asyncpg.Pool, ctx: Context, unit_id: str, kind: str, reason: str) -> str:
    async with pool.acquire() as conn:
        await security_event(conn, ctx.clock.now(), kind, f"mqtt:unit:{unit_id[:64]}", reason=reason)
    log.warning("unit message refused", extra={"fields": {"unit_id": unit_id[:64], "kind": kind}})
    return kind


async def receive(pool: asyncpg.Pool, ctx: Context, unit_id: str, leaf: str, payload: bytes) -> str | None:
    """Handle a `location` or `ack` message of a unit; returns the refusal kind, or None when done."""
    try:
        if leaf == "location":
            where = protocol.parse_unit_location(payload)
            async with pool.acquire() as conn:
                if await conn.fetchrow(queries.mobile_unit, unit_id) is None:
                    raise Refused("unknown_unit", "no such mobile unit")
                await conn.execute(queries.move_unit, unit_id, where.lon, where.lat, ctx.clock.now())
            return None
        if leaf == "ack":
            ack = protocol.parse_unit_ack(payload)
            await officer.set_status(pool, ctx, ack.dispatch_id, ack.status, responder_id=unit_id,
                                     actor=f"unit:{unit_id}", note=ack.note, via="mqtt")
            return None
        raise Refused("bad_topic", f"unknown unit event {leaf!r}")
    except Refused as refused:
        return await _refuse(pool, ctx, unit_id, refused.kind, refused.message)
    except NotFound:
        return await _refuse(pool, ctx, unit_id, "unknown_dispatch", "no such dispatch for this unit")
    except Conflict as exc:
        # a status that no longer fits (say, the alert was cancelled): nothing to record as hostile
        log.info("unit status not applied", extra={"fields": {"unit_id": unit_id, "reason": exc.message}})
        return "conflict"
    except DomainError as exc:
        return await _refuse(pool, ctx, unit_id, "malformed_payload", exc.message)
