"""Unit terminals over MQTT: a location report or a dispatch status in (dispatches go out by `notifier`)."""

from __future__ import annotations

import asyncpg

from alertd.channels.mqtt_wire import Publish
from alertd.channels.units import protocol
from alertd.context import Context
from alertd.core.model import Refused
from alertd.service import units


class UnitsIn:
    family = "units"
    subscriptions = protocol.SUBSCRIPTIONS

    def __init__(self, pool: asyncpg.Pool, ctx: Context) -> None:
        self.pool, self.ctx = pool, ctx

    async def handle(self, unit_id: str, leaf: str, payload: bytes, publish: Publish) -> None:
        try:
            message: units.UnitLocation | units.UnitAck | Refused = protocol.parse(leaf, payload)
        except Refused as refused:
            message = refused
        await units.receive(self.pool, self.ctx, unit_id, message)

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass
