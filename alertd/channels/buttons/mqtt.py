"""Buttons over MQTT: a press, test or heartbeat in; a press's `{seq}` ack, or a test's `{seq, test: true}`, out
once it is committed."""

from __future__ import annotations

import json
import logging

import asyncpg

from alertd.channels.buttons import protocol
from alertd.channels.mqtt_wire import Publish
from alertd.context import Context
from alertd.service import buttons
from alertd.service.ports import OwnSender

log = logging.getLogger("alertd.channels.buttons")


class ButtonsIn:
    """Button messages of different devices commit together under load (each acked after its own group's
    commit); the ingest keeps one message per device in hand, so a device's messages stay in order."""

    family = "buttons"
    subscriptions = protocol.SUBSCRIPTIONS

    def __init__(self, pool: asyncpg.Pool, ctx: Context, *, observe=None, sender: OwnSender | None = None) -> None:
        self.committer = buttons.group_committer(pool, ctx, committers=2, max_group=ctx.settings.intake_max_group,
                                                 observe=observe, sender=sender)

    async def handle(self, device_id: str, leaf: str, payload: bytes, publish: Publish) -> None:
        receipt = await self.committer.submit(protocol.inbound(device_id, leaf, payload))
        if receipt.ack_seq is not None:
            ack = {"seq": receipt.ack_seq, "test": True} if receipt.test else {"seq": receipt.ack_seq}
            publish(protocol.button_topic(device_id, "ack"), json.dumps(ack))
            if not receipt.duplicate:
                log.info("button test recorded" if receipt.test else "button press committed", extra={"fields": {
                    "device_id": device_id, "seq": receipt.ack_seq, "alert_id": receipt.alert_id}})

    def start(self) -> None:
        self.committer.start()

    async def stop(self) -> None:
        await self.committer.stop(drain_s=0.5)
