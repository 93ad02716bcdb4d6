"""Simulated buttons and unit terminals on paho-mqtt: one button or thousands, press, heartbeat, move, acknowledge.

A `Button` has its own connection and credentials, like the real thing; it signs with the firmware's own
protocol code and retries a press until alertd's app-level ack arrives. A `Swarm` drives many buttons over a few
connections (a broker without per-device ACLs, for load). A `Unit` is a mobile unit's terminal.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt

from clients.button import protocol


class Refused(RuntimeError):
    """The broker refused the connection (bad credentials, revoked)."""


def _parse(url: str) -> tuple[str, int, str | None, str | None, bool]:
    """host, port, user, password and TLS of mqtt://… or mqtts://… (the broker's TLS port, 8883 by default)."""
    p = urlsplit(url)
    tls = p.scheme in ("mqtts", "ssl")
    return p.hostname or "127.0.0.1", p.port or (8883 if tls else 1883), p.username, p.password, tls


class _Connection:
    """A paho MQTT 5 client in its own thread, with the CONNACK and each PUBACK's reason code kept."""

    def __init__(self, url: str, client_id: str | None = None, clean_start: bool = True,
                 ca_file: str | None = None) -> None:
        """An mqtts:// URL connects over TLS, trusting only `ca_file` (the broker's CA, as the firmware pins it)
        and checking the broker's name against its certificate."""
        self.host, self.port, user, password, tls = _parse(url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"sim-{uuid.uuid4().hex[:10]}", protocol=mqtt.MQTTv5)
        if tls:
            self.client.tls_set_context(ssl.create_default_context(cafile=ca_file))
        if user:
            self.client.username_pw_set(user, password)
        self.clean_start = clean_start
        self.connack = threading.Event()
        self.reason: mqtt.ReasonCode | None = None
        self.puback: dict[int, str] = {}
        self.subscriptions: list[str] = []
        self.on_message: Callable[[str, bytes], None] = lambda _t, _p: None
        self.client.on_connect = self._on_connect
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self.puback.__setitem__(mid, str(rc))
        self.client.on_message = lambda _c, _u, m: self.on_message(m.topic, m.payload)
        self.client.reconnect_delay_set(0.2, 2)

    def _on_connect(self, client, _u, _f, reason, _p) -> None:
        self.reason = reason
        if not reason.is_failure:
            for topic in self.subscriptions:
                client.subscribe(topic, qos=1)
        self.connack.set()

    def connect(self, timeout: float = 5.0) -> None:
        """Connect and wait for the broker's answer; Refused if it says no."""
        self.client.connect_async(self.host, self.port, keepalive=30, clean_start=self.clean_start)
        self.client.loop_start()
        if not self.connack.wait(timeout):
            self.close()
            raise Refused("no answer from the broker")
        if self.reason is not None and self.reason.is_failure:
            self.close()
            raise Refused(str(self.reason))

    def subscribe(self, topic: str) -> None:
        self.subscriptions.append(topic)
        self.client.subscribe(topic, qos=1)

    def publish(self, topic: str, payload: bytes, wait_s: float = 5.0) -> str:
        """Publish at QoS 1; the PUBACK's reason ("Success", or "Not authorized" when the broker denies it)."""
        info = self.client.publish(topic, payload, qos=1)
        deadline = time.monotonic() + wait_s
        while info.mid not in self.puback and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.puback.get(info.mid, "no answer")

    def publish_nowait(self, topic: str, payload: bytes) -> int:
        """Publish at QoS 1 without waiting; the message id, whose PUBACK reason `puback` keeps once it comes."""
        return self.client.publish(topic, payload, qos=1).mid

    @property
    def connected(self) -> bool:
        return self.client.is_connected()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Button:
    """One button: its own connection and credentials; seq rises; a press is retried until acknowledged."""

    def __init__(self, url: str, device_id: str, secret: str, *, seq: int = 0,
                 clock: Callable[[], float] = time.time, retry_s: float = 1.0, ca_file: str | None = None,
                 on_unanswered: Callable[[int, str], None] | None = None,
                 sms: Callable[[str], None] | None = None, ack_timeout_s: float = protocol.ACK_TIMEOUT_S) -> None:
        """on_unanswered(seq, puback) is called once per press when its first try got no ack in retry_s; puback
        is the broker's answer to that try ("Success", "Not authorized", or "no answer"). `sms(text)` is the
        second path: a press not acknowledged within ack_timeout_s is also sent by SMS (the firmware's compact
        signed message), once; MQTT goes on."""
        self.device_id, self.secret = device_id, secret
        self.seq = seq
        self.clock = clock
        self.retry_s = retry_s
        self.on_unanswered = on_unanswered
        self.sms, self.ack_timeout_s = sms, ack_timeout_s
        self.acked: dict[int, float] = {}
        self.tests_acked: set[int] = set()  # seqs alertd acknowledged as tests ({"seq": n, "test": true})
        self._ack = threading.Condition()
        self.conn = _Connection(url, client_id=device_id, ca_file=ca_file)
        self.conn.subscriptions.append(protocol.topic(device_id, "ack"))
        self.conn.on_message = self._on_ack

    def _on_ack(self, _topic: str, payload: bytes) -> None:
        seq = protocol.acked_seq(payload)
        if seq is not None:
            with self._ack:
                self.acked.setdefault(seq, time.monotonic())
                if protocol.acked_test(payload) == seq:
                    self.tests_acked.add(seq)
                self._ack.notify_all()

    def connect(self) -> Button:
        self.conn.connect()
        return self

    def next_message(self, event: str, *, bat: float | None = None, loc=None, cell=None,
                     seq: int | None = None, ts: int | None = None) -> tuple[int, str, bytes]:
        if seq is None:
            self.seq += 1
            seq = self.seq
        ts = int(self.clock()) if ts is None else ts
        topic, payload = protocol.message(self.device_id, self.secret, event, seq, ts, bat=bat, loc=loc, cell=cell)
        return seq, topic, payload

    def press(self, *, loc=None, cell=None, bat: float | None = None, wait_s: float = 30.0) -> int:
        """Press and retry until alertd acknowledges (or wait_s passes: then TimeoutError)."""
        seq, topic, payload = self.next_message("press", loc=loc, cell=cell, bat=bat)
        sms_text = None
        if self.sms is not None:
            ts = json.loads(payload)["ts"]
            sms_text = protocol.sms_text(self.device_id, self.secret, seq, ts, loc=loc, cell=cell)
        self.send_until_acked(seq, topic, payload, wait_s, sms_text=sms_text)
        return seq

    def test(self, *, bat: float | None = None, wait_s: float = 30.0) -> int:
        """Her test gesture: a test, retried until alertd acknowledges it as a test (or TimeoutError). Nothing is
        dispatched; the firmware blinks "all good"."""
        seq, topic, payload = self.next_message("test", bat=bat)
        self.send_until_acked(seq, topic, payload, wait_s)
        if seq not in self.tests_acked:
            raise TimeoutError(f"test {seq} of {self.device_id} was acknowledged, but not as a test")
        return seq

    def send_until_acked(self, seq: int, topic: str, payload: bytes, wait_s: float,
                         sms_text: str | None = None) -> None:
        deadline = time.monotonic() + wait_s
        sms_at = time.monotonic() + self.ack_timeout_s
        tries = 0
        while True:
            if sms_text is not None and time.monotonic() >= sms_at:
                self.sms(sms_text)  # type: ignore[misc]
                sms_text = None
            mid = self.conn.publish_nowait(topic, payload)
            tries += 1
            with self._ack:
                if self._ack.wait_for(lambda: seq in self.acked,
                                      timeout=max(0.0, min(self.retry_s, deadline - time.monotonic()))):
                    return
            if tries == 1 and self.on_unanswered:
                self.on_unanswered(seq, self.conn.puback.get(mid, "no answer"))
            if time.monotonic() >= deadline:
                raise TimeoutError(f"press {seq} of {self.device_id} was not acknowledged in {wait_s:g} s")

    def heartbeat(self, bat: float) -> str:
        _seq, topic, payload = self.next_message("heartbeat", bat=bat)
        return self.conn.publish(topic, payload)

    def close(self) -> None:
        self.conn.close()


class Unit:
    """A mobile unit's terminal: reports where it is, receives dispatches, acknowledges them."""

    def __init__(self, url: str, unit_id: str, *, clock: Callable[[], float] = time.time,
                 ca_file: str | None = None) -> None:
        self.unit_id, self.clock = unit_id, clock
        self.dispatches: list[dict] = []
        self.conn = _Connection(url, client_id=unit_id, ca_file=ca_file)
        self.conn.subscriptions.append(f"alertd/v1/units/{unit_id}/dispatch")
        self.conn.on_message = lambda _t, p: self.dispatches.append(json.loads(p))

    def connect(self) -> Unit:
        self.conn.connect()
        return self

    def move(self, lat: float, lon: float, acc: float = 10.0) -> str:
        body = {"lat": lat, "lon": lon, "acc": acc, "ts": int(self.clock())}
        return self.conn.publish(f"alertd/v1/units/{self.unit_id}/location", json.dumps(body).encode())

    def ack(self, dispatch_id: str, status: str = "acknowledged") -> str:
        body = {"dispatch_id": dispatch_id, "status": status}
        return self.conn.publish(f"alertd/v1/units/{self.unit_id}/ack", json.dumps(body).encode())

    def close(self) -> None:
        self.conn.close()


class Swarm:
    """Many buttons over a few connections (needs a broker that lets those connections publish for all of them)."""

    def __init__(self, url: str, buttons: list[tuple[str, str]], *, connections: int = 4,
                 clock: Callable[[], float] = time.time, ca_file: str | None = None) -> None:
        self.buttons = buttons
        self.clock = clock
        self.sent: dict[tuple[str, int], float] = {}
        self.acked: dict[tuple[str, int], float] = {}
        self.seq = {device_id: 0 for device_id, _ in buttons}
        self._cursor = -1
        self._lock = threading.Lock()
        self.conns = [_Connection(url, ca_file=ca_file) for _ in range(connections)]
        for conn in self.conns:
            conn.on_message = self._on_ack
        self.conns[0].subscriptions.append("alertd/v1/buttons/+/ack")

    def _on_ack(self, topic: str, payload: bytes) -> None:
        seq = protocol.acked_seq(payload)
        if seq is not None:
            with self._lock:
                self.acked.setdefault((topic.split("/")[3], seq), time.monotonic())

    def connect(self) -> Swarm:
        for conn in self.conns:
            conn.connect()
        return self

    def press(self, index: int, loc=None) -> tuple[str, int]:
        device_id, secret = self.buttons[index]
        self.seq[device_id] += 1
        seq = self.seq[device_id]
        topic, payload = protocol.message(device_id, secret, "press", seq, int(self.clock()), loc=loc)
        self.sent[(device_id, seq)] = time.monotonic()
        self.conns[index % len(self.conns)].publish_nowait(topic, payload)
        return device_id, seq

    def press_next(self, loc=None) -> tuple[str, int] | None:
        """Press the next button (round robin) whose last press was acknowledged, as a real button behaves
        (it sends nothing new while a press is pending); None when every button is waiting."""
        n = len(self.buttons)
        for _ in range(n):
            self._cursor = (self._cursor + 1) % n
            device_id = self.buttons[self._cursor][0]
            seq = self.seq[device_id]
            if seq == 0 or (device_id, seq) in self.acked:
                return self.press(self._cursor, loc=loc)
        return None

    def latencies(self) -> list[float]:
        with self._lock:
            return [self.acked[k] - t for k, t in self.sent.items() if k in self.acked]

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
