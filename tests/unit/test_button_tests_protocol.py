"""Test presses without a broker: the firmware's own code (as MicroPython runs it) signs a test that the service
reads as a test and never as a press (nor a press as a test), its ack is told apart from a press's, and the gesture
that sends a test is only ever a clean one: anything else her finger does is a press."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alertd.channels.buttons import protocol
from alertd.core.model import Refused
from alertd.mqtt.dynsec import button_acls, service_acls, topics
from clients.button import protocol as firmware

SECRET = "ab" * 32
NOW = 1_795_000_000


def test_a_firmware_test_is_read_and_accepted_as_a_test():
    topic, payload = firmware.message("B-1", SECRET, "test", 9, NOW, bat=0.7)
    assert topic == "alertd/v1/buttons/B-1/test"
    message = protocol.parse_button("B-1", "test", payload)
    assert (message.event, message.seq, message.battery, message.gps) == ("test", 9, 0.7, None)
    assert message.signed == "B-1|test|9|1795000000"
    protocol.check_button(message, SECRET, NOW)
    # bat is optional on a test (unlike a heartbeat)
    protocol.parse_button("B-1", "test", firmware.message("B-1", SECRET, "test", 10, NOW)[1])


@pytest.mark.parametrize(("signed_as", "sent_as"), [("press", "test"), ("test", "press"), ("heartbeat", "test"),
                                                    ("test", "heartbeat")])
def test_a_press_mac_cannot_pass_as_a_test_nor_a_test_mac_as_a_press(signed_as, sent_as):
    _topic, payload = firmware.message("B-1", SECRET, signed_as, 9, NOW, bat=0.5)
    with pytest.raises(Refused) as refused:
        protocol.check_button(protocol.parse_button("B-1", sent_as, payload), SECRET, NOW)
    assert refused.value.kind == "bad_mac"


def test_the_subscriptions_and_a_buttons_rights_include_its_own_test_topic_only():
    assert "$share/alertd/alertd/v1/buttons/+/test" in protocol.SUBSCRIPTIONS
    assert topics("button", "B-1")["test"] == "alertd/v1/buttons/B-1/test"
    published = {a["topic"] for a in button_acls("B-1") if a["acltype"] == "publishClientSend"}
    assert published == {"alertd/v1/buttons/B-1/press", "alertd/v1/buttons/B-1/heartbeat",
                         "alertd/v1/buttons/B-1/test"}
    assert {"acltype": "subscribePattern", "topic": "$share/alertd/alertd/v1/buttons/+/test", "priority": 0,
            "allow": True} in service_acls()


def test_a_tests_ack_is_told_apart_from_a_press_ack():
    assert firmware.acked_test(json.dumps({"seq": 4, "test": True}).encode()) == 4
    for other in ({"seq": 4}, {"seq": 4, "test": False}, {"seq": 4, "test": 1}, {"seq": "4", "test": True}, [4]):
        assert firmware.acked_test(json.dumps(other).encode()) is None
    assert firmware.acked_test(b"{") is None
    pending = firmware.PendingTest(4, "t", b"p", now=0)
    assert not pending.settled_by(json.dumps({"seq": 4}).encode())  # a press's ack does not settle a test
    assert not pending.settled_by(json.dumps({"seq": 3, "test": True}).encode())
    assert pending.settled_by(json.dumps({"seq": 4, "test": True}).encode())
    assert not pending.sms_due(10_000)  # a test never goes by SMS
    # a press is settled by an ack of its seq, as before
    assert firmware.PendingPress(4, "t", b"p", now=0).settled_by(json.dumps({"seq": 4}).encode())


@given(st.binary(max_size=200))
def test_acked_test_never_raises_on_any_bytes(payload):
    try:
        payload.decode()
    except UnicodeDecodeError:
        return  # MicroPython's ujson and CPython's json both refuse undecodable bytes before this
    result = firmware.acked_test(payload)
    assert result is None or isinstance(result, int)


def test_the_test_gestures():
    g = firmware.gesture
    both = firmware.TEST_GESTURES["both"]
    assert g(1, 2000, both) == "test" and g(1, 4000, both) == "test"  # a long press
    assert g(2, 150, both) == "test"                                  # a double press
    assert g(1, 150, both) == "press" and g(1, 1999, both) == "press"
    assert g(2, 2000, both) == "press"                    # two presses, one held: not a clean gesture
    # by default only the double press tests: a frightened hand holding the button down raises her alert
    assert firmware.DEFAULT_GESTURE == "double"
    assert g(2, 150) == "test" and g(1, 2000) == "press" and g(1, 60_000) == "press"
    assert g(1, 2500, firmware.TEST_GESTURES["double"]) == "press"
    assert g(2, 150, firmware.TEST_GESTURES["long"]) == "press"
    assert g(2, 150, firmware.TEST_GESTURES["off"]) == "press"


@given(st.integers(min_value=0, max_value=50), st.integers(min_value=0, max_value=60_000),
       st.sampled_from(sorted(firmware.TEST_GESTURES)))
def test_pressing_again_and_again_is_always_a_press(presses, held_ms, setting):
    """In a panic she may hammer the button: three or more presses are never taken for a test."""
    result = firmware.gesture(presses, held_ms, firmware.TEST_GESTURES[setting])
    assert result in ("press", "test")
    if presses >= 3 or presses == 0 or setting == "off":
        assert result == "press"
