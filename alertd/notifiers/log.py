"""A notifier that writes the message to the log: the stand-in when a channel has no provider configured."""

from __future__ import annotations

import logging

from alertd.service.ports import Message

log = logging.getLogger("alertd.notify")


class LogNotifier:
    def __init__(self, channel: str = "log") -> None:
        self.channel = channel

    async def send(self, message: Message) -> str | None:
        # The payload holds a dispatch code and an approximate place, never who she is.
        log.info("notify", extra={"fields": {
            "channel": self.channel, "recipient": message.recipient, "template": message.template,
            "code": message.payload.get("code"), "alert_id": message.alert_id}})
        return None
