"""MQTT ingest: buttons and unit terminals in, each message acknowledged to the broker only after it is committed.

One persistent MQTT 5 session (clean_start off, a stable client id) on shared subscriptions, so several
`alertd serve` split the devices and a crash between receipt and commit loses nothing: the broker redelivers
what was never acknowledged. Messages of one device are handled in order (a shard per device), devices in
parallel. The channels (`channels/buttons`, `channels/units`) read and answer the messages; this module only
subscribes, routes each topic to its channel and acknowledges.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import zlib
from collections.abc import Callable
from typing import Protocol

import asyncpg
from paho.mqtt.subscribeoptions import SubscribeOptions

from alertd.context import Context
from alertd.mqtt.client import BrokerConnection
from alertd.store.db import CONNECTION_LOST

log = logging.getLogger("alertd.mqtt.ingest")
# What a database outage looks like: keep the message unacknowledged and try it again.
TRANSIENT = (*CONNECTION_LOST, asyncpg.SerializationError, asyncpg.DeadlockDetectedError)


PREFIX = "alertd/v1"


class Channel(Protocol):
    """What the ingest routes a topic family (`alertd/v1/<family>/<id>/<leaf>`) to."""

    family: str
    subscriptions: tuple[str, ...]

    async def handle(self, ident: str, leaf: str, payload: bytes, publish: Callable[[str, str], None]) -> None: ...

    def start(self) -> None: ...

    async def stop(self) -> None: ...


def split_topic(topic: str) -> tuple[str, str, str] | None:
    """(family, the device or unit id, the leaf) of an alertd topic, or None."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != PREFIX or not parts[2] or not parts[3]:
        return None
    return parts[2], parts[3], parts[4]


def client_id(settings) -> str:
    """Stable across restarts (the broker keeps the session), distinct per instance on one host."""
    return settings.mqtt_client_id or f"alertd-{socket.gethostname()}-{settings.http_port}"


class Ingest:
    def __init__(self, ctx: Context, channels: list[Channel], *, shards: int = 256) -> None:
        self.ctx = ctx
        # The shards keep one message per device in hand, so a device's messages stay in order.
        self.channels = {c.family: c for c in channels}
        self.subscriptions = [t for c in channels for t in c.subscriptions]
        settings = ctx.settings
        self.broker = BrokerConnection(settings, client_id=client_id(settings), clean_start=False, manual_ack=True,
                                       session_expiry_s=settings.mqtt_session_expiry_s)
        self.broker.on_connect_hooks.append(self._subscribe)
        self.broker.client.on_message = self._on_message
        self.broker.client.on_unsubscribe = self._on_unsubscribe
        self.broker.client.on_subscribe = self._on_subscribe
        self.queues: list[asyncio.Queue] = [asyncio.Queue() for _ in range(shards)]
        self.tasks: list[asyncio.Task] = []
        self.busy = 0
        self.handled = 0
        self._unsubscribed = asyncio.Event()
        self.subscribed = asyncio.Event()  # set once the broker granted the subscriptions

    # paho's network thread

    def _subscribe(self) -> None:
        self.broker.client.subscribe([(t, SubscribeOptions(qos=1)) for t in self.subscriptions])

    def _on_message(self, _client, _userdata, msg) -> None:
        self._soon(self._route, msg)

    def _on_subscribe(self, _client, _userdata, _mid, reason_codes, _properties) -> None:
        if any(rc.is_failure for rc in reason_codes):
            log.error("broker refused the ingest subscriptions", extra={"fields": {
                "reasons": [str(rc) for rc in reason_codes]}})
            return
        self._soon(self.subscribed.set)

    def _on_unsubscribe(self, *_args) -> None:
        self._soon(self._unsubscribed.set)

    def _soon(self, callback, *args) -> None:
        """Run `callback` on the asyncio loop (paho calls us from its network thread, once the loop is known)."""
        if (loop := self.broker.loop) is not None:
            loop.call_soon_threadsafe(callback, *args)

    # the asyncio loop

    def _route(self, msg) -> None:
        route = split_topic(msg.topic)
        if route is None or route[0] not in self.channels:
            self.broker.client.ack(msg.mid, msg.qos)
            return
        family, ident, leaf = route
        self.busy += 1
        self.queues[zlib.crc32(ident.encode()) % len(self.queues)].put_nowait((family, ident, leaf, msg))

    async def _work(self, queue: asyncio.Queue) -> None:
        while True:
            family, ident, leaf, msg = await queue.get()
            try:
                await self._handle(family, ident, leaf, msg)
            finally:
                self.busy -= 1

    async def _handle(self, family: str, ident: str, leaf: str, msg) -> None:
        delay = 0.1
        while True:
            try:
                await self.channels[family].handle(ident, leaf, msg.payload, self._publish)
                break
            except TRANSIENT as exc:
                # Nothing committed: the message stays unacknowledged; if we die, the broker redelivers it.
                log.warning("message not committed, retrying", extra={"fields": {"error": str(exc)[:200]}})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)  # a failover ends any moment: come back soon after it
            except Exception:
                # A bug must not wedge this device's shard; the button retries until its app-level ack.
                log.exception("message handler failed", extra={"fields": {"topic_family": family}})
                break
        self.handled += 1
        self.broker.client.ack(msg.mid, msg.qos)

    def _publish(self, topic: str, payload: str) -> None:
        self.broker.client.publish(topic, payload, qos=1)

    async def start(self) -> None:
        self.tasks = [asyncio.create_task(self._work(q), name=f"alertd-ingest-{i}") for i, q in enumerate(self.queues)]
        for channel in self.channels.values():
            channel.start()
        await self.broker.start()

    async def stop(self, drain_s: float = 5.0) -> None:
        """Stop taking new messages, finish the ones in hand, disconnect (the session stays for a restart)."""
        if self.broker.is_connected:
            self.broker.client.unsubscribe(list(self.subscriptions))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._unsubscribed.wait(), 2.0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_s
        while self.busy and loop.time() < deadline:  # noqa: ASYNC110 (a count, not an event: polled while draining)
            await asyncio.sleep(0.02)
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for channel in self.channels.values():
            await channel.stop()
        await self.broker.stop()
