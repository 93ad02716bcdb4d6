"""Mobile-unit terminals: a location report moves the unit; an ack or status goes through the officer workflow.

Unit messages carry no signature: the broker authenticates each terminal (its own account and client id) and
lets it publish only on its own topics. The service adds what it can check: the terminal's account is live, an
ack names a dispatch of that unit, and that dispatch is still in play.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import asyncpg

from alertd.context import Context
from alertd.core.model import Conflict, DomainError, NotFound, Refused
from alertd.service import dispatch_actions
from alertd.service.timeline import security_event
from alertd.store import queries

log = logging.getLogger("alertd.units")


@dataclass(frozen=True)
class UnitLocation:
    lat: float
    lon: float
    acc: float | None
    ts: int | None


@dataclass(frozen=True)
class UnitAck:
    dispatch_id: str
    status: str
    note: str | None


async def _refuse(pool: asyncpg.Pool, ctx: Context, unit_id: str, kind: str, reason: str) -> str:
    async with pool.acquire() as conn:
        await security_event(conn, ctx.clock.now(), kind, f"mqtt:unit:{unit_id[:64]}", reason=reason)
    log.warning("unit message refused", extra={"fields": {"unit_id": unit_id[:64], "kind": kind}})
    return kind


async def _check_terminal(conn: asyncpg.Connection, unit_id: str) -> None:
    """A mobile unit with live terminal credentials (the broker should have refused any other; if its state and
    the database ever differ, the database decides)."""
    if await conn.fetchrow(queries.get_mobile_unit, unit_id) is None:
        raise Refused("unknown_unit", "no such mobile unit")
    account = await conn.fetchrow(queries.get_mqtt_account, unit_id)
    if account is None or account["kind"] != "unit":
        raise Refused("unknown_unit", "this unit has no terminal")
    if account["revoked_at"] is not None:
        raise Refused("revoked_unit", "this unit's terminal was revoked")


async def receive(pool: asyncpg.Pool, ctx: Context, unit_id: str,
                  message: UnitLocation | UnitAck | Refused) -> str | None:
    """Handle a unit's location or ack (or the refusal its channel read); returns the refusal kind, or None."""
    try:
        if isinstance(message, Refused):
            raise message
        async with pool.acquire() as conn:
            await _check_terminal(conn, unit_id)
            if isinstance(message, UnitLocation):
                await conn.execute(queries.move_unit, unit_id, message.lon, message.lat, ctx.clock.now())
                return None
        ack = message
        await dispatch_actions.set_status(pool, ctx, ack.dispatch_id, ack.status, responder_id=unit_id,
                                 actor=f"unit:{unit_id}", note=ack.note, via="mqtt", in_play_only=True)
        return None
    except Refused as refused:
        return await _refuse(pool, ctx, unit_id, refused.kind, refused.message)
    except NotFound:
        return await _refuse(pool, ctx, unit_id, "unknown_dispatch", "no such dispatch for this unit")
    except dispatch_actions.InactiveDispatch as exc:
        # Resolved, cancelled, or expired on a closed alert: nothing a terminal has any business changing.
        return await _refuse(pool, ctx, unit_id, "inactive_dispatch", exc.message)
    except Conflict as exc:
        # an out-of-order status on a dispatch still in play (acknowledged after en_route): the terminal's own
        # lag, nothing to record as hostile
        log.info("unit status not applied", extra={"fields": {"unit_id": unit_id, "reason": exc.message}})
        return "conflict"
    except DomainError as exc:
        return await _refuse(pool, ctx, unit_id, "malformed_payload", exc.message)
