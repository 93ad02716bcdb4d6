"""A notifier that pushes the message to the officers' live console through NOTIFY (every instance hears it)."""

from __future__ import annotations

import json

import asyncpg

from alertd.service.ports import Message
from alertd.store import queries


class ConsoleNotifier:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def send(self, message: Message) -> str | None:
        return (await self.send_batch([message]))[0]

    async def send_batch(self, messages: list[Message]) -> list[str | None]:
        """Every message in one statement: a burst of dispatches costs one round trip, not one each."""
        bodies = [json.dumps({
            "type": "notification", "recipient": m.recipient, "template": m.template,
            "alert_id": m.alert_id, "dispatch_id": m.dispatch_id, "payload": m.payload,
        }) for m in messages]
        async with self.pool.acquire() as conn:
            await conn.execute(queries.notify_console, bodies)
        return [None] * len(messages)
