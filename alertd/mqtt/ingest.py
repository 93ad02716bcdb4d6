"""MQTT ingest: buttons and unit terminals in, each message acknowledged to the broker only after it is committed.

One persistent MQTT 5 session (clean_start off, a stable client id) on shared subscriptions, so several
`alertd serve` split the devices and a crash between receipt and commit loses nothing: the broker redelivers
what was never acknowledged. Messages of one device are handled in order (a shard per device), devices in
parallel.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import zlib

import asyncpg
from paho.mqtt.subscribeoptions import SubscribeOptions

from alertd.mqtt import protocol
from alertd.mqtt.client import BrokerConnection
from alertd.mqtt.protocol import Refused
from alertd.service import buttons, units
from alertd.service.context import Context
from alertd.store.db import CONNECTION_LOST

log = logging.getLogger("alertd.mqtt.ingest")
# What a database outage looks like: keep the message unacknowledged and try it again.
TRANSIENT = (*CONNECTION_LOST, asyncpg.SerializationError, asyncpg.DeadlockDetectedError)


def client_id(settings) -> str:
    """Stable across restarts (the broker keeps the session), distinct per instance on one host."""
    return settings.mqtt_client_id or f"alertd-{socket.gethostname()}-{settings.http_port}"


class Ingest:
    def __init__(self, pool: asyncpg.Pool, ctx: Context, *, shards: int = 256, observe=None) -> None:
        self.pool, self.ctx = pool, ctx
        # Button messages of different devices commit together under load (each acked after its own group's
        # commit); the shards keep one message per device in hand, so a device's messages stay in order.
        self.buttons = buttons.group_committer(pool, ctx, committers=2, max_group=ctx.settings.intake_max_group,
                                               observe=observe)
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
        self.broker.client.subscribe([(t, SubscribeOptions(qos=1)) for t in protocol.SUBSCRIPTIONS])

    def _on_message(self, _client, _userdata, msg) -> None:
        self.broker.loop.call_soon_threadsafe(self._route, msg)

    def _on_subscribe(self, _client, _userdata, _mid, reason_codes, _properties) -> None:
        if any(rc.is_failure for rc in reason_codes):
            log.error("broker refused the ingest subscriptions", extra={"fields": {
                "reasons": [str(rc) for rc in reason_codes]}})
            return
        self.broker.loop.call_soon_threadsafe(self.subscribed.set)

    def _on_unsubscribe(self, *_args) -> None:
        self.broker.loop.call_soon_threadsafe(self._unsubscribed.set)

    # the asyncio loop

    def _route(self, msg) -> None:
        try:
            family, ident, leaf = protocol.split_topic(msg.topic)
        except Refused:
            self.broker.client.ack(msg.mid, msg.qos)
            return
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
                if family == "buttons":
                    receipt = await self.buttons.submit(buttons.Inbound(ident, leaf, msg.payload))
                    if receipt.ack_seq is not None:
                        self.broker.client.publish(protocol.button_topic(ident, "ack"),
                                                   json.dumps({"seq": receipt.ack_seq}), qos=1)
                        if not receipt.duplicate:
                            log.info("button press committed", extra={"fields": {
                                "device_id": ident, "seq": receipt.ack_seq, "alert_id": receipt.alert_id}})
                else:
                    await units.receive(self.pool, self.ctx, ident, leaf, msg.payload)
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

    async def start(self) -> None:
        self.tasks = [asyncio.create_task(self._work(q), name=f"alertd-ingest-{i}") for i, q in enumerate(self.queues)]
        self.buttons.start()
        await self.broker.start()

    async def stop(self, drain_s: float = 5.0) -> None:
        """Stop taking new messages, finish the ones in hand, disconnect (the session stays for a restart)."""
        if self.broker.is_connected:
            self.broker.client.unsubscribe(list(protocol.SUBSCRIPTIONS))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._unsubscribed.wait(), 2.0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_s
        while self.busy and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.buttons.stop(drain_s=0.5)
        await self.broker.stop()
