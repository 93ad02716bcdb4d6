"""The live console feed: `GET /v1/events` WebSocket, fed by LISTEN/NOTIFY so every instance sees every change."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections import OrderedDict
from dataclasses import dataclass

import asyncpg
from aiohttp import WSMsgType, web

from alertd.auth import Principal
from alertd.store import queries
from alertd.store.db import CONNECTION_LOST, connect_primary, ping
from alertd.web.keys import HUB, POOL
from alertd.web.security import principal

log = logging.getLogger("alertd.events")
routes = web.RouteTableDef()


@dataclass(eq=False)
class Subscriber:
    who: Principal
    queue: asyncio.Queue


class Hub:
    """One LISTEN connection per instance, fanned out to the WebSockets allowed to see each change."""

    PROBE_EVERY_S = 5.0
    PROBE_TIMEOUT_S = 5.0

    def __init__(self, pool: asyncpg.Pool, dsn: str) -> None:
        self.pool = pool
        self.dsn = dsn
        self.subscribers: weakref.WeakSet[Subscriber] = weakref.WeakSet()
        self.listening = asyncio.Event()
        self._inbox: asyncio.Queue[dict] = asyncio.Queue()
        self._routed: OrderedDict[int, None] = OrderedDict()
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._listen(), name="alertd-hub-listen"),
                       asyncio.create_task(self._consume(), name="alertd-hub-route")]
        await asyncio.wait_for(self.listening.wait(), 30)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _listen(self) -> None:
        """Keep one LISTEN connection up, on whichever server is the primary now (after a failover, the new one);
        after a reconnect, tell consoles to catch up (?since=) on the gap."""
        first = True
        while True:
            lost = asyncio.Event()
            try:
                conn = await connect_primary(self.dsn)
            except (*CONNECTION_LOST, asyncpg.PostgresError) as exc:
                log.warning("console feed cannot listen", extra={"fields": {"error": str(exc)}})
                await asyncio.sleep(1)
                continue
            try:
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener("alertd_events", self._on_notify)
                self.listening.set()
                if not first:
                    for sub in list(self.subscribers):
                        sub.queue.put_nowait({"type": "resync"})
                first = False
                await self._until_lost(conn, lost)
                log.warning("console feed lost its database connection; reconnecting")
            except (*CONNECTION_LOST, asyncpg.PostgresError) as exc:
                log.warning("console feed lost its database connection; reconnecting",
                            extra={"fields": {"error": str(exc)}})
            finally:
                self.listening.clear()
                conn.terminate()

    async def _until_lost(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Return when the connection closes, or raise when it stops answering (a server that died without
        closing it: a powered-off machine sends nothing, and a LISTEN connection never asks anything)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self.PROBE_EVERY_S)
                return
            await asyncio.wait_for(ping(conn), self.PROBE_TIMEOUT_S)

    def _on_notify(self, _conn, _pid, _channel, payload: str) -> None:
        if self.subscribers:  # with no console connected here, there is no one to route it to
            self._inbox.put_nowait(json.loads(payload))

    async def _consume(self) -> None:
        """Route notifications one at a time, so every console sees changes in the order they were made."""
        while True:
            message = await self._inbox.get()
            try:
                await self._route(message)
            except (*CONNECTION_LOST, asyncpg.PostgresError) as exc:
                log.warning("console feed could not route an event", extra={"fields": {"error": str(exc)}})

    async def _route(self, message: dict) -> None:
        if not self.subscribers:
            return
        if message.get("type") == "notification":
            recipient = message.get("recipient", "")
            for sub in list(self.subscribers):
                if recipient == sub.who.responder_id or sub.who.role == "admin" or (
                        sub.who.role == "supervisor" and recipient == f"supervisor:{sub.who.region}"):
                    sub.queue.put_nowait({"type": "notification", **message})
            return
        # A statement's new events, named by id range: read them once, for every console of this instance.
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(queries.list_events_in_range, message["first_id"], message["last_id"])
        for row in rows:
            if row["id"] in self._routed:  # ranges of concurrent transactions can overlap
                continue
            self._routed[row["id"]] = None
            if len(self._routed) > 10_000:
                self._routed.popitem(last=False)
            event = {"id": row["id"], "alert_id": str(row["alert_id"]), "type": row["type"],
                     "dispatch_id": str(row["dispatch_id"]) if row["dispatch_id"] else None,
                     "responder_id": row["responder_id"]}
            for sub in list(self.subscribers):
                if self.may_see(sub.who, row):
                    sub.queue.put_nowait({"type": "event", "event": event})

    @staticmethod
    def may_see(who: Principal, audience) -> bool:
        if who.role == "admin":
            return True
        if audience is None:
            return False
        if who.role == "supervisor" and who.region and audience["region"] == who.region:
            return True
        return who.responder_id in audience["responders"]


@routes.get("/v1/events")
async def events(request: web.Request) -> web.StreamResponse:
    who = await principal(request, "officer", "supervisor", "admin")
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    hub = request.app[HUB]
    assert isinstance(hub, Hub)
    sub = Subscriber(who, asyncio.Queue(maxsize=10_000))
    hub.subscribers.add(sub)
    try:
        since = request.query.get("since")
        if since is not None and since.isascii() and since.isdigit() and len(since) < 19:
            scope = None if who.role == "admin" else who.responder_id
            async with request.app[POOL].acquire() as conn:
                missed = await conn.fetch(queries.list_events_since, int(since), scope)
            for row in missed:
                await ws.send_json({"type": "event", "replay": True, "event": {
                    "id": row["id"], "alert_id": str(row["alert_id"]), "type": row["type"],
                    "dispatch_id": str(row["dispatch_id"]) if row["dispatch_id"] else None,
                    "responder_id": row["responder_id"]}})
        await ws.send_json({"type": "ready"})
        reader = asyncio.create_task(_drain(ws))
        try:
            while not ws.closed:
                getter = asyncio.create_task(sub.queue.get())
                try:
                    done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                except asyncio.CancelledError:  # the server shuts down with this console still connected
                    getter.cancel()
                    raise
                if getter not in done:
                    getter.cancel()
                    break
                await ws.send_json(getter.result())
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    finally:
        hub.subscribers.discard(sub)
        await ws.close()
    return ws


async def _drain(ws: web.WebSocketResponse) -> None:
    """Read (and ignore) what the client sends, until it closes."""
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break
