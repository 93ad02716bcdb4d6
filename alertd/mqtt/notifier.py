"""The 'mqtt' notifier: a mobile unit's terminal gets its dispatches (and stand-downs) on its `dispatch` topic."""

from __future__ import annotations

import asyncio
import json

import paho.mqtt.client as mqtt

from alertd.mqtt.client import BrokerConnection
from alertd.mqtt.protocol import unit_topic
from alertd.notifiers import Message, SendError


class MqttNotifier:
    def __init__(self, broker: BrokerConnection, timeout_s: float = 5.0) -> None:
        self.broker = broker
        self.timeout_s = timeout_s

    async def send(self, message: Message) -> str | None:
        """Publish at QoS 1 and wait for the broker's PUBACK; anything less is "retry later"."""
        if not self.broker.is_connected:
            raise SendError("not connected to the broker")
        # The payload already holds only a code and an approximate place (never who she is).
        body = {"template": message.template, "dispatch_id": message.dispatch_id, **message.payload}
        info = self.broker.client.publish(unit_topic(message.recipient, "dispatch"), json.dumps(body), qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise SendError(f"publish failed: {mqtt.error_string(info.rc)}")
        await asyncio.get_running_loop().run_in_executor(None, info.wait_for_publish, self.timeout_s)
        if not info.is_published():
            raise SendError("the broker did not acknowledge the dispatch")
        return f"mqtt:{info.mid}"
