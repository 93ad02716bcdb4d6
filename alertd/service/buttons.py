"""Button presses and heartbeats: check, dedupe, locate, raise the alert; all in one transaction per message."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from alertd.core.model import Location
from alertd.mqtt import protocol
from alertd.mqtt.protocol import ButtonMessage, Refused
from alertd.service import intake
from alertd.service.context import Context
from alertd.service.timeline import security_event
from alertd.store import queries

log = logging.getLogger("alertd.buttons")
PHONE_FIX_MAX_AGE = timedelta(minutes=10)


@dataclass(frozen=True)
class Receipt:
    """What the ingest does next: acknowledge `ack_seq` on the button's ack topic, or nothing."""

    ack_seq: int | None = None
    alert_id: str | None = None
    refused: str | None = None
    duplicate: bool = False


async def receive(pool: asyncpg.Pool, ctx: Context, device_id: str, event_name: str, payload: bytes) -> Receipt:
    """Handle one press or heartbeat. Refusals are recorded as security events and answered with nothing."""
    try:
        message = protocol.parse_button(device_id, event_name, payload)
    except Refused as refused:
        return await _refuse(pool, ctx, device_id, refused)
    try:
        async with pool.acquire() as conn, conn.transaction():
            button = await conn.fetchrow(queries.button_for_update, device_id)
            return await _accept(conn, ctx, ctx.clock.now(), button, message)
    except Refused as refused:  # the transaction rolled back: nothing of it stays
        return await _refuse(pool, ctx, device_id, refused, seq=message.seq)


async def _accept(conn: asyncpg.Connection, ctx: Context, now: datetime, button, message: ButtonMessage) -> Receipt:
    if button is None:
        raise Refused("unknown_device", "no such button")
    if button["revoked_at"] is not None:
        raise Refused("revoked_device", "button is revoked")
    protocol.check_button(message, button["hmac_secret"], now.timestamp())
    if message.seq <= button["last_seq"]:
        return await _seen_before(conn, button, message)
    await conn.execute(queries.button_heard, message.device_id, message.seq, now, message.battery,
                       ctx.settings.button_low_battery)
    if message.battery is not None and message.battery < ctx.settings.button_low_battery:
        await conn.execute(queries.notify_wake, "supervision")
    if message.event == "heartbeat":
        return Receipt()
    alert_id = await _raise(conn, ctx, now, button, message)
    return Receipt(ack_seq=message.seq, alert_id=str(alert_id))


async def _seen_before(conn: asyncpg.Connection, button, message: ButtonMessage) -> Receipt:
    """A press already committed (QoS 1 redelivery, or the firmware retrying) is acknowledged again, once more."""
    if message.event == "press":
        row = await conn.fetchrow(queries.alerts_by_client_ids, [message.device_id], [f"seq:{message.seq}"])
        if row is not None:
            return Receipt(ack_seq=message.seq, alert_id=str(row["id"]), duplicate=True)
    elif message.seq == button["last_seq"]:
        return Receipt(duplicate=True)
    raise Refused("replayed_seq", "seq is not above the last one seen")


async def _raise(conn: asyncpg.Connection, ctx: Context, now: datetime, button, message: ButtonMessage):
    person_id = button["person_id"]
    triggered_at = datetime.fromtimestamp(message.ts, UTC)
    where = await _locate(conn, now, person_id, message, triggered_at)
    # The button row is locked and seq is above its last one, so this (device, seq) cannot exist yet.
    return await intake.create_alert(conn, ctx, now, person_id=person_id, device_id=message.device_id,
                                     channel="button", client_alert_id=f"seq:{message.seq}",
                                     triggered_at=triggered_at, location=where, seq=message.seq)


async def _locate(conn: asyncpg.Connection, now: datetime, person_id: str, message: ButtonMessage,
                  triggered_at: datetime) -> Location | None:
    """Best first, looking no further than needed: GPS in the press, her phone's fix if under 10 minutes old,
    the cell tower. None leaves the alert to its own fallback, her registered home."""
    if message.gps is not None:
        lat, lon, acc = message.gps
        return Location(lat, lon, acc, "gps", triggered_at)
    row = await conn.fetchrow(queries.phone_last_fix, person_id, now - PHONE_FIX_MAX_AGE)
    if row is not None:
        return Location.from_row(row)
    if message.cell is not None:
        tower = await conn.fetchrow(queries.cell_tower, *message.cell)
        if tower is not None:
            return Location(tower["lat"], tower["lon"], tower["range_m"], "cell", triggered_at)
    return None


async def _refuse(pool: asyncpg.Pool, ctx: Context, device_id: str, refused: Refused, **detail) -> Receipt:
    async with pool.acquire() as conn:
        await security_event(conn, ctx.clock.now(), refused.kind, f"mqtt:{device_id[:64]}",
                             reason=refused.message, **detail)
    log.warning("button message refused", extra={"fields": {"device_id": device_id[:64], "kind": refused.kind}})
    return Receipt(refused=refused.kind)
