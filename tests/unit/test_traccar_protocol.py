"""Traccar's forwarded JSON, read by the channel's parser: the shapes Traccar 6 sends, and (hypothesis) whatever
arrives is a Forwarded or Malformed, never another exception; an SOS is never refused over its position."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alertd.channels.traccar import protocol
from alertd.core import validate
from alertd.core.validate import Malformed
from tests import traccar_support as traccar

settings.register_profile("alertd", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("alertd")

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=16)
FIELDS = ("event", "position", "device", "id", "type", "alarm", "attributes", "uniqueId", "latitude",
          "longitude", "accuracy", "fixTime", "eventTime", "valid", "outdated")


def _dump(doc) -> bytes:
    return json.dumps(doc).encode()


def test_an_sos_alarm_as_traccar_6_sends_it():
    forwarded = protocol.parse(_dump(traccar.alarm("sos", 7001, 50.01, 70.02, NOW - timedelta(seconds=5))))
    assert forwarded.sos and forwarded.event_id == 7001 and forwarded.unique_id == traccar.IMEI
    assert forwarded.event_time == NOW - timedelta(seconds=5)
    where = forwarded.position.location(NOW)
    assert (where.lat, where.lon, where.accuracy_m, where.source) == (50.01, 70.02, None, "gps")  # 0 = unknown
    assert where.fix_time == NOW - timedelta(seconds=5)


@pytest.mark.parametrize(("doc", "sos", "event_type"), [
    (traccar.alarm("lowBattery", 1, 50, 70, NOW), False, "alarm"),
    (traccar.alarm("powerCut", 2, 50, 70, NOW), False, "alarm"),
    (traccar.alarm("fallDown", 3, 50, 70, NOW), False, "alarm"),
    (traccar.alarm("lowBattery,sos", 4, 50, 70, NOW), True, "alarm"),  # a report's alarms, joined by Traccar
    (traccar.device_online(5, NOW), False, "deviceOnline"),
    (traccar.geofence_enter(6, 50, 70, NOW), False, "geofenceEnter"),
    (traccar.position_forward(50, 70, NOW), False, None),
])
def test_what_is_an_sos_and_what_is_not(doc, sos, event_type):
    forwarded = protocol.parse(_dump(doc))
    assert (forwarded.sos, forwarded.event_type) == (sos, event_type)


def test_older_jackson_offsets_and_the_clock_rule():
    doc = traccar.position_forward(50, 70, NOW)
    doc["position"]["fixTime"] = "2026-11-26T11:58:00.000+0000"  # Traccar before Jackson 2.11
    assert protocol.parse(_dump(doc)).position.fix_time == NOW - timedelta(minutes=2)
    doc["position"]["fixTime"] = traccar.jackson_time(NOW - timedelta(days=3))  # a watch's stale clock
    assert protocol.parse(_dump(doc)).position.location(NOW).fix_time == NOW


def test_positions_that_say_nothing_of_where_she_is_now():
    outdated = protocol.parse(_dump(traccar.position_forward(50, 70, NOW, outdated=True))).position
    no_fix = protocol.parse(_dump(traccar.position_forward(0.0, 0.0, NOW, valid=False))).position
    cell = protocol.parse(_dump(traccar.position_forward(50, 70, NOW, valid=False, accuracy=900.0))).position
    assert outdated.location(NOW) is None and no_fix.location(NOW) is None
    assert (cell.location(NOW).source, cell.location(NOW).accuracy_m) == ("network", 900.0)


def test_an_sos_is_never_refused_over_its_position_but_anything_else_is():
    doc = traccar.alarm("sos", 9, 50, 70, NOW)
    doc["position"]["latitude"] = 123.0
    forwarded = protocol.parse(_dump(doc))
    assert forwarded.sos and forwarded.position is None and forwarded.unusable == ("position",)
    doc = traccar.alarm("lowBattery", 9, 50, 70, NOW)
    doc["position"]["latitude"] = 123.0
    with pytest.raises(Malformed, match=r"position\.latitude"):
        protocol.parse(_dump(doc))


@pytest.mark.parametrize("doc", [
    {"device": {"uniqueId": traccar.IMEI}},  # neither event nor position
    {"event": {"type": "alarm", "attributes": {"alarm": "sos"}}},  # no device
    {"event": {"type": "alarm", "id": -1, "attributes": {"alarm": "sos"}}, "device": {"uniqueId": "1"}},
    {"event": {"type": "alarm", "attributes": {"alarm": "sos"}}, "device": {"uniqueId": "has space"}},
    [],
])
def test_malformed_forwards(doc):
    with pytest.raises(Malformed):
        protocol.parse(_dump(doc))


@given(st.binary(max_size=300) | JSON_VALUES.map(_dump))
def test_anything_is_a_forward_or_malformed(raw):
    try:
        forwarded = protocol.parse(raw)
    except Malformed as exc:
        assert exc.status == 400 and exc.message
        return
    assert forwarded.event_type is not None or forwarded.position is not None


# Documents shaped like Traccar's, with any of their fields replaced by any JSON value.
@given(st.sampled_from([traccar.alarm("sos", 1, 50, 70, NOW), traccar.device_online(2, NOW),
                        traccar.position_forward(50, 70, NOW)]),
       st.lists(st.tuples(st.sampled_from(("event", "position", "device")), st.sampled_from(FIELDS), JSON_VALUES),
                max_size=3))
def test_traccar_shaped_documents_with_any_field_spoiled(doc, spoils):
    doc = json.loads(json.dumps(doc))
    for part, key, value in spoils:
        if isinstance(doc.get(part), dict):
            doc[part][key] = value
    try:
        forwarded = protocol.parse(_dump(doc))
    except Malformed:
        return
    if forwarded.position is not None and (where := forwarded.position.location(NOW)) is not None:
        assert -90 <= where.lat <= 90 and -180 <= where.lon <= 180
        assert NOW - validate.MAX_BEHIND <= where.fix_time <= NOW + validate.MAX_AHEAD


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
       st.sampled_from(["sos", "lowBattery", "fallDown", "powerCut", "sos,vibration"]),
       st.integers(1, 2**63 - 1), st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e), min_size=1,
                                          max_size=30),
       st.floats(-90, 90), st.floats(-180, 180))
def test_what_traccar_writes_is_read_back(when, alarm, event_id, unique_id, lat, lon):
    forwarded = protocol.parse(_dump(traccar.alarm(alarm, event_id, lat, lon, when, unique_id=unique_id)))
    assert forwarded.sos == ("sos" in alarm.split(","))
    assert (forwarded.event_id, forwarded.unique_id) == (event_id, unique_id)
    assert forwarded.event_time == when.replace(microsecond=when.microsecond // 1000 * 1000)
    assert (forwarded.position.lat, forwarded.position.lon) == (lat, lon)
