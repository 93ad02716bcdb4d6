"""The log notifier (SMS with no provider configured, supervisors' log notices) writes and forgets: a service that
kept every message it wrote would grow without end, and each full garbage collection would walk them all."""

from __future__ import annotations

import asyncio
import gc
import weakref
from datetime import UTC, datetime

from alertd.notifiers.log import LogNotifier
from alertd.service.ports import Message


def test_a_message_written_to_the_log_is_not_kept():
    notifier = LogNotifier("sms")
    message = Message(1, "sms", "pol-1", "dispatch", {"code": "ABCDEF"}, None, None, 1, datetime.now(UTC))
    kept = weakref.ref(message)
    assert asyncio.run(notifier.send(message)) is None
    del message
    gc.collect()
    assert kept() is None
