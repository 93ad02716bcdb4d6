"""A notifier that pushes the message to the officers' live console through NOTIFY (every instance hears it)."""

from __future__ import annotations

import json

import asyncpg

from alertd.notifiers import Message
from alertd.store import queries


class ConsoleNotifier:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def send(self, message: Message) -> str | None:
        body = json.dumps({
            "type": "notification", "recipient": message.recipient, "template": message.template,
            "alert_id": message.alert_id, "dispatch_id": message.dispatch_id, "payload": message.payload,
        })
        async with self.pool.acquire() as conn:
            await conn.execute(queries.notify_console, body)
        return None
