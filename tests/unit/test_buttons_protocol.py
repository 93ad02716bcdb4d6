"""The button protocol without a broker: the firmware's own code (as MicroPython runs it) against the service's
checks, payload validation, retry backoff and the persistent seq."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from alertd.channels.buttons import protocol
from alertd.channels.units import protocol as unit_protocol
from alertd.core.model import Refused
from alertd.mqtt.ingest import split_topic
from clients.button import protocol as firmware

SECRET = "ab" * 32
NOW = 1_795_000_000


def test_firmware_hmac_is_rfc2104_and_the_service_accepts_its_messages():
    for key in (b"", b"k", bytes(range(64)), bytes(range(100))):
        msg = b"B-1|press|7|1795000000"
        assert firmware.hmac_sha256_hex(key, msg) == hmac.new(key, msg, hashlib.sha256).hexdigest()
    topic, payload = firmware.message("B-1", SECRET, "press", 7, NOW, bat=0.8, loc=(50.1, 70.2, 12.0),
                                      cell=(401, 1, 1200, 33001))
    assert topic == "alertd/v1/buttons/B-1/press"
    assert split_topic(topic) == ("buttons", "B-1", "press")
    message = protocol.parse_button("B-1", "press", payload)
    assert (message.seq, message.battery, message.gps, message.cell) == (7, 0.8, (50.1, 70.2, 12.0), (401, 1, 1200, 33001))
    protocol.check_button(message, SECRET, NOW + 599)


def test_forged_stale_and_malformed_messages_are_refused():
    _t, payload = firmware.message("B-1", SECRET, "press", 7, NOW)
    with pytest.raises(Refused) as forged:
        protocol.check_button(protocol.parse_button("B-1", "press", payload), "cd" * 32, NOW)
    assert forged.value.kind == "bad_mac"
    # the mac covers the device id and the event: a press cannot pass as another device's, or as a heartbeat
    with pytest.raises(Refused):
        protocol.check_button(protocol.parse_button("B-2", "press", payload), SECRET, NOW)
    body = json.loads(payload)
    with pytest.raises(Refused):
        protocol.check_button(protocol.parse_button("B-1", "heartbeat", json.dumps({**body, "bat": 1}).encode()),
                              SECRET, NOW)
    with pytest.raises(Refused) as stale:
        protocol.check_button(protocol.parse_button("B-1", "press", payload), SECRET, NOW + 601)
    assert stale.value.kind == "stale_ts"
    for bad in (b"{", b"null", b'"x"', json.dumps({**body, "seq": 0}).encode(), json.dumps({**body, "seq": True}).encode(),
                json.dumps({**body, "mac": "short"}).encode(), json.dumps({**body, "ts": "now"}).encode(),
                b"[" * 100_000 + b"]" * 100_000, json.dumps(body).replace('"seq": 7', '"seq": ' + "7" * 5000).encode(),
                json.dumps({**body, "mac": "\x00" * 64}).encode(), b'{"seq": NaN}', b"\xff"):
        with pytest.raises(Refused) as refused:
            protocol.parse_button("B-1", "press", bad)
        assert refused.value.kind == "malformed_payload"
    with pytest.raises(Refused):  # a heartbeat must report its battery
        protocol.parse_button("B-1", "heartbeat", payload)
    for topic in ("alertd/v1/buttons//press", "alertd/v2/buttons/B-1/press", "x/y"):
        assert split_topic(topic) is None


def test_a_press_with_an_auxiliary_field_out_of_range_is_kept_and_the_field_named_unusable():
    """bat, loc and cell only help to locate and supervise: a bad one never sinks a panic press."""
    _t, payload = firmware.message("B-1", SECRET, "press", 7, NOW)
    body = json.loads(payload)
    for extra, unusable in (({"bat": 90}, ("bat",)), ({"bat": 2}, ("bat",)), ({"loc": {"lat": 91, "lon": 0}}, ("loc",)),
                            ({"cell": {"mcc": 401}}, ("cell",)), ({"bat": 10**400, "loc": "here"}, ("bat", "loc")),
                            ({"bat": 0.5, "loc": {"lat": 50.0, "lon": 70.0, "acc": -1}}, ("loc",))):
        message = protocol.parse_button("B-1", "press", json.dumps({**body, **extra}).encode())
        protocol.check_button(message, SECRET, NOW)  # the MAC and ts still decide that it is authentic
        assert message.unusable == unusable, extra
        assert message.gps is None and message.cell is None
    assert protocol.parse_button("B-1", "press", json.dumps({**body, "bat": 0.5}).encode()).battery == 0.5
    with pytest.raises(Refused):  # and a forged one is still refused, whatever else it carries
        protocol.check_button(protocol.parse_button("B-1", "press", json.dumps({**body, "bat": 90}).encode()),
                              "cd" * 32, NOW)


def test_unit_payloads():
    where = unit_protocol.parse_unit_location(b'{"lat": 50.0, "lon": 70.0, "acc": 8, "ts": 1795000000}')
    assert (where.lat, where.lon, where.acc) == (50.0, 70.0, 8.0)
    assert unit_protocol.parse_unit_ack(b'{"dispatch_id": "d-1"}').status == "acknowledged"
    for bad in (b'{"lat": 95, "lon": 0}', b'{"lat": "x", "lon": 0}'):
        with pytest.raises(Refused):
            unit_protocol.parse_unit_location(bad)
    with pytest.raises(Refused):
        unit_protocol.parse_unit_ack(b'{"dispatch_id": "d-1", "status": "cancelled"}')


def test_firmware_seq_survives_reboots_and_a_press_retries_with_backoff_until_acknowledged():
    class Store:  # stands in for the ESP32's NVS
        value = 0

        def load(self):
            return self.value

        def save(self, v):
            self.value = v

    store = Store()
    assert [firmware.Sequence(store).next() for _ in range(3)] == [1, 2, 3]  # a new Sequence per "boot"
    pending = firmware.PendingPress(3, "t", b"p", now=100)
    sent_at = []
    t = 100
    while len(sent_at) < 8:
        t += 1
        if pending.retry_due(t):
            sent_at.append(t)
            pending.sent_again(t)
    assert [b - a for a, b in zip(sent_at, sent_at[1:], strict=False)] == [2, 4, 8, 15, 30, 60, 60]
    assert not pending.settled_by(b'{"seq": 2}') and not pending.settled_by(b"junk")
    assert pending.settled_by(b'{"seq": 3}')
