"""Drill figures (docs/drills.md): what became of each dispatch of a drill, and the shares an audit asks for.

BS 8484's targets for an alarm-receiving centre (80% of alarms handled within 10 s, 98.5% within 40 s) measure
operators at a desk answering a ringing alarm. alertd's responders are rural police posts, crisis centres and
mobile units acknowledging a dispatch by SMS reply, terminal or console, often from a vehicle or a yard, and each
kind has its own acknowledgement deadline after which the engine escalates. So the figures here are:

- the share acknowledged within 60 s of dispatch (target TARGET_WITHIN_60S), the pace a responder who has their
  phone on them can keep, and
- the share acknowledged within their own deadline (target TARGET_WITHIN_DEADLINE): a miss escalates, costing the
  survivor a whole deadline, so at most one dispatch in twenty may miss it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from statistics import median
from typing import Any

QUICK_S = 60
TARGET_WITHIN_60S = 0.80
TARGET_WITHIN_DEADLINE = 0.95

# Outcomes of one dispatch; only the first three count in the shares (a stand-down before the deadline, or a
# dispatch whose deadline has not come yet, says nothing about the responder).
WITHIN, LATE, MISSED, STOOD_DOWN, WAITING = "within_deadline", "late", "missed", "stood_down", "waiting"
COUNTED = (WITHIN, LATE, MISSED)
DELIVERED, FAILED = ("delivered",), ("undelivered", "failed", "rejected")


def _seconds(later: datetime | None, earlier: datetime) -> float | None:
    return None if later is None else round((later - earlier).total_seconds(), 3)


def outcome(row: Mapping[str, Any], now: datetime) -> str:
    """What became of one dispatch by `now`: acknowledged in time or late, missed (its deadline passed without an
    acknowledgement), stood down before its deadline, or still waiting for it."""
    if row["acknowledged_at"] is not None:
        return WITHIN if row["acknowledged_at"] <= row["ack_deadline"] and not row["late_ack"] else LATE
    if row["expired_at"] is not None:
        return MISSED
    if row["status"] == "cancelled":
        return MISSED if row["updated_at"] > row["ack_deadline"] else STOOD_DOWN
    return MISSED if now > row["ack_deadline"] else WAITING


def sms_delivery(row: Mapping[str, Any]) -> str | None:
    """The dispatch SMS's delivery as the provider reported it (delivered, undelivered, failed...), else how far it
    got (accepted, rejected, sending), else the outbox's state; None without an SMS (no phone)."""
    return row["sms_delivery"] or row["sms_state"] or row["sms_outbox"]


def dispatch_line(row: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """One responder dispatched in a drill, as the report shows it."""
    sent = row["created_at"]
    got = outcome(row, now)
    to_ack = _seconds(row["acknowledged_at"], sent)
    return {
        "dispatch_id": str(row["id"]), "responder_id": row["responder_id"], "kind": row["kind"],
        "attempt": row["attempt"], "broadcast": row["broadcast"], "status": row["status"],
        "sent_at": sent.isoformat(),
        "acknowledged_at": row["acknowledged_at"].isoformat() if row["acknowledged_at"] else None,
        "seconds_to_acknowledge": to_ack,
        "deadline_seconds": _seconds(row["ack_deadline"], sent),
        "within_deadline": got == WITHIN,
        "within_60s": to_ack is not None and to_ack <= QUICK_S,
        "escalated": row["expired_at"] is not None,
        "outcome": got,
        "sms": sms_delivery(row),
        "sms_sent_at": row["sms_sent_at"].isoformat() if row["sms_sent_at"] else None,
    }


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def totals(lines: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The figures over dispatch lines (of one drill, or of every drill of a period)."""
    lines = list(lines)
    counted = [x for x in lines if x["outcome"] in COUNTED]
    within = sum(1 for x in counted if x["outcome"] == WITHIN)
    quick = sum(1 for x in counted if x["within_60s"])
    acks = [x["seconds_to_acknowledge"] for x in lines if x["seconds_to_acknowledge"] is not None]
    sms = [x["sms"] for x in lines if x["sms"] is not None]
    share_deadline, share_60s = _share(within, len(counted)), _share(quick, len(counted))
    return {
        "dispatched": len(lines),
        "counted": len(counted),
        "acknowledged": len(acks),
        "within_deadline": within,
        "within_60s": quick,
        "late": sum(1 for x in counted if x["outcome"] == LATE),
        "missed": sum(1 for x in counted if x["outcome"] == MISSED),
        "escalated": sum(1 for x in lines if x["escalated"]),
        "stood_down": sum(1 for x in lines if x["outcome"] == STOOD_DOWN),
        "waiting": sum(1 for x in lines if x["outcome"] == WAITING),
        "share_within_deadline": share_deadline,
        "share_within_60s": share_60s,
        "median_seconds_to_acknowledge": None if not acks else round(median(acks), 3),
        "sms": {"sent": len(sms), "delivered": sum(1 for s in sms if s in DELIVERED),
                "failed": sum(1 for s in sms if s in FAILED)},
        "targets": {
            "within_60s": {"target": TARGET_WITHIN_60S, "met": None if share_60s is None
                           else share_60s >= TARGET_WITHIN_60S},
            "within_deadline": {"target": TARGET_WITHIN_DEADLINE, "met": None if share_deadline is None
                                else share_deadline >= TARGET_WITHIN_DEADLINE},
        },
    }
