"""The service's own MQTT connection: paho-mqtt in its network thread, handing events to the asyncio loop."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import uuid
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from alertd.settings import Settings
from alertd.tls import secure

log = logging.getLogger("alertd.mqtt")


class BrokerConnection:
    """Connects (and reconnects) to the broker; `connected` is what /readyz reports."""

    def __init__(self, settings: Settings, *, client_id: str | None = None, clean_start: bool = True,
                 manual_ack: bool = False, session_expiry_s: int | None = None) -> None:
        """With session_expiry_s the connection speaks MQTT 5 and keeps a broker-side session that long
        (clean_start False resumes it); manual_ack leaves each PUBACK to `client.ack(mid, qos)`."""
        host, port, user, password = settings.mqtt_parts()
        self.host, self.port = host, port
        self.loop: asyncio.AbstractEventLoop | None = None
        self.connected = asyncio.Event()
        self.on_connect_hooks: list[Callable[[], None]] = []
        self.clean_start, self.session_expiry_s = clean_start, session_expiry_s
        v5 = session_expiry_s is not None
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"alertd-{uuid.uuid4().hex[:12]}",
            clean_session=None if v5 else clean_start,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            manual_ack=manual_ack,
        )
        if user:
            self.client.username_pw_set(user, password)
        secure(self.client, settings.mqtt_tls, settings.mqtt_tls_context() if settings.mqtt_tls else None)
        if not settings.mqtt_tls and not _loopback(host):
            log.warning("the broker connection is not encrypted: use mqtts:// (docs/configuration.md)",
                        extra={"fields": {"host": host}})
        self.client.reconnect_delay_set(min_delay=1, max_delay=5)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker refused connection", extra={"fields": {"reason": str(reason_code)}})
            return
        for hook in self.on_connect_hooks:
            hook()
        if self.loop:
            self.loop.call_soon_threadsafe(self.connected.set)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.loop:
            self.loop.call_soon_threadsafe(self.connected.clear)

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        if self.session_expiry_s is None:
            self.client.connect_async(self.host, self.port, keepalive=15)
        else:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self.session_expiry_s
            self.client.connect_async(self.host, self.port, keepalive=15, clean_start=self.clean_start,
                                      properties=props)
        self.client.loop_start()

    async def stop(self, *, end_session: bool = False) -> None:
        """Disconnect; end_session also tells an MQTT 5 broker to drop the session now."""
        if end_session and self.session_expiry_s is not None:
            props = Properties(PacketTypes.DISCONNECT)
            props.SessionExpiryInterval = 0
            self.client.disconnect(properties=props)
        else:
            self.client.disconnect()
        await asyncio.get_running_loop().run_in_executor(None, self.client.loop_stop)

    @property
    def is_connected(self) -> bool:
        return self.client.is_connected()

    async def publish_acked(self, topic: str, payload: str, timeout_s: float = 5.0) -> int:
        """Publish at QoS 1 and wait for the broker's PUBACK; returns the message id, raises ConnectionError."""
        if not self.is_connected:
            raise ConnectionError("not connected to the broker")
        info = self.client.publish(topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise ConnectionError(f"publish failed: {mqtt.error_string(info.rc)}")
        await asyncio.get_running_loop().run_in_executor(None, info.wait_for_publish, timeout_s)
        if not info.is_published():
            raise ConnectionError("the broker did not acknowledge the publish")
        return info.mid


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
