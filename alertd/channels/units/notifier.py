"""The 'mqtt' notifier: a mobile unit's terminal gets its dispatches (and stand-downs) on its `dispatch` topic."""

from __future__ import annotations

import json
from typing import Protocol

from alertd.channels.units.protocol import unit_topic
from alertd.core.places import for_reader, maps_url
from alertd.service.ports import Message, SendError


class Publisher(Protocol):
    """The service's broker connection (alertd.mqtt.client.BrokerConnection)."""

    async def publish_acked(self, topic: str, payload: str, timeout_s: float = 5.0) -> int: ...


class MqttNotifier:
    def __init__(self, broker: Publisher, timeout_s: float = 5.0) -> None:
        self.broker = broker
        self.timeout_s = timeout_s

    async def send(self, message: Message) -> str | None:
        """Publish at QoS 1 and wait for the broker's PUBACK; anything less is "retry later"."""
        # The payload already holds only a code and an approximate place (never who she is).
        # `drill` is always there: true on every message about a drill (the outbox marks them), so a terminal
        # shows DRILL before anything else, and false otherwise.
        body = {"template": message.template, "dispatch_id": message.dispatch_id, **message.payload,
                "drill": message.payload.get("drill") is True}
        if message.template == "dispatch":
            body.update(unit_view(message.payload))
        try:
            mid = await self.broker.publish_acked(unit_topic(message.recipient, "dispatch"), json.dumps(body),
                                                  self.timeout_s)
        except ConnectionError as exc:
            raise SendError(str(exc)) from None
        return f"mqtt:{mid}"


def unit_view(payload: dict) -> dict:
    """What a terminal shows beyond the coordinates: the nearest named place in the unit's language
    (`{name, distance_m, bearing, text}`, null without one) and a maps link."""
    extra: dict = {"place": for_reader(payload.get("place"), payload.get("language") or "ru")}
    if isinstance(payload.get("lat"), int | float) and isinstance(payload.get("lon"), int | float):
        extra["maps_url"] = maps_url(payload["lat"], payload["lon"])
    return extra
