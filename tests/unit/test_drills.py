"""Drills without servers: the DRILL marker in every SMS template and language (within two segments), the unit
terminal's `drill` flag, and the report's outcomes and figures."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alertd.channels.sms.templates import DRILL_MARK, LANGUAGES, TEMPLATES, render
from alertd.channels.sms.text import segments
from alertd.channels.units.notifier import MqttNotifier
from alertd.core import drills
from alertd.service.ports import Message

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WORST = {"code": "7KX3QM", "kind": "crisis_centre", "lat": -50.123, "lon": -170.456, "accuracy_m": 100000,
         "deadline": "2026-11-26T12:02:00+00:00", "priority": "high", "duress": True, "attempt": 9, "drill": True}


@pytest.mark.parametrize("template", sorted(TEMPLATES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_drill_message_starts_with_drill_in_her_language_within_two_segments(template, language):
    text = render(template, WORST, language, ZoneInfo("Asia/Almaty"))
    assert text.startswith(f"{DRILL_MARK[language]}: ")
    assert segments(text)[1] <= 2
    if template == "dispatch":
        assert not text.startswith(f"{DRILL_MARK[language]}: !!")  # a drill is never urgent


def test_a_real_message_has_no_marker_and_a_drill_dispatch_reads_whole():
    real = {**WORST, "drill": False, "priority": "normal", "duress": False, "lat": 50.284, "lon": 70.456,
            "accuracy_m": 50}
    assert render("dispatch", real, "en") == ("ALERT 7KX3QM crisis centre: maps.google.com/?q=50.284,70.456 +/-50m. "
                                              "Reply 7KX3QM to acknowledge by 12:02 (UTC)")
    assert render("dispatch", {**real, "drill": True}, "en") == (
        "DRILL: ALERT 7KX3QM crisis centre: maps.google.com/?q=50.284,70.456 +/-50m. "
        "Reply 7KX3QM to acknowledge by 12:02 (UTC)")
    assert render("drill_ended", {"code": "7KX3QM", "drill": True}, "ru") == "УЧЕНИЯ: 7KX3QM: учения окончены. Отбой."
    assert render("dispatch", {**real, "drill": "yes"}, "en").startswith("ALERT")  # only true marks it


class Publisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []

    async def publish_acked(self, topic: str, payload: str, timeout_s: float = 5.0) -> int:
        self.sent.append((topic, json.loads(payload)))
        return len(self.sent)


@pytest.mark.parametrize("drill", [True, False])
def test_the_unit_terminal_always_gets_the_drill_flag(drill):
    broker = Publisher()
    payload = {"code": "7KX3QM", "kind": "mobile_unit", "lat": 50.0, "lon": 70.0, "language": "kk",
               **({"drill": True} if drill else {})}
    message = Message(1, "mqtt", "mu-1", "dispatch", payload, "a", "d", 0, T0)
    asyncio.run(MqttNotifier(broker).send(message))
    [(topic, body)] = broker.sent
    assert topic == "alertd/v1/units/mu-1/dispatch" and body["drill"] is drill


def _row(ack_s: float | None, deadline_s: float = 60, *, expired: bool = False, status: str | None = None,
         cancelled_at_s: float | None = None, sms: str | None = None) -> dict:
    deadline = T0 + timedelta(seconds=deadline_s)
    acked = None if ack_s is None else T0 + timedelta(seconds=ack_s)
    return {"id": "d", "responder_id": "r", "kind": "police_post", "attempt": 1, "broadcast": False,
            "status": status or ("acknowledged" if acked else "expired" if expired else "pending"),
            "created_at": T0, "ack_deadline": deadline, "acknowledged_at": acked,
            "late_ack": acked is not None and acked > deadline, "expired_at": deadline if expired else None,
            "updated_at": T0 + timedelta(seconds=cancelled_at_s if cancelled_at_s is not None else 0),
            "sms_outbox": "sent" if sms else None, "sms_state": "accepted" if sms else None, "sms_delivery": sms,
            "sms_sent_at": T0 if sms else None}


def test_outcomes_and_figures():
    now = T0 + timedelta(seconds=30)
    lines = [drills.dispatch_line(r, now) for r in (
        _row(20, sms="delivered"),             # within 60 s and the deadline
        _row(80, deadline_s=90),               # within its deadline, not within 60 s
        _row(100, expired=True),               # late: after its deadline (and escalated)
        _row(None, expired=True, sms="undelivered"),  # missed
        _row(None, status="cancelled", cancelled_at_s=10),   # stood down before its deadline: not counted
        _row(None, deadline_s=120),            # still waiting at `now`: not counted
    )]
    assert [x["outcome"] for x in lines] == ["within_deadline", "within_deadline", "late", "missed", "stood_down",
                                             "waiting"]
    assert [x["escalated"] for x in lines] == [False, False, True, True, False, False]
    totals = drills.totals(lines)
    assert (totals["counted"], totals["within_deadline"], totals["within_60s"], totals["late"], totals["missed"],
            totals["stood_down"], totals["waiting"]) == (4, 2, 1, 1, 1, 1, 1)
    assert (totals["share_within_deadline"], totals["share_within_60s"]) == (0.5, 0.25)
    assert totals["median_seconds_to_acknowledge"] == 80
    assert totals["sms"] == {"sent": 2, "delivered": 1, "failed": 1}
    assert totals["targets"]["within_60s"] == {"target": 0.8, "met": False}
    empty = drills.totals([])
    assert empty["share_within_deadline"] is None and empty["targets"]["within_deadline"]["met"] is None


@given(st.lists(st.tuples(st.one_of(st.none(), st.floats(0, 600)), st.sampled_from([60, 90, 120]),
                          st.booleans()), max_size=30))
def test_shares_are_shares(rows):
    now = T0 + timedelta(seconds=1000)
    lines = [drills.dispatch_line(_row(ack, deadline, expired=ack is None and expired), now)
             for ack, deadline, expired in rows]
    totals = drills.totals(lines)
    assert totals["counted"] == len(rows)  # by `now` every deadline has passed: each dispatch counts
    for share in (totals["share_within_deadline"], totals["share_within_60s"]):
        assert share is None or 0 <= share <= 1
    assert totals["within_deadline"] + totals["late"] + totals["missed"] == totals["counted"]
