"""What the service needs from the outside, as protocols its callers implement.

Notifiers share one contract, `send(message)`; raising means "retry later". The engine picks them by channel.
Broker accounts: where device credentials take effect (Mosquitto's dynamic security in `mqtt/dynsec.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class Message:
    id: int
    channel: str
    recipient: str
    template: str
    payload: dict[str, Any]
    alert_id: str | None
    dispatch_id: str | None
    attempts: int
    created_at: datetime
    provider_ref: str | None = None

    @classmethod
    def from_row(cls, row) -> Message:
        return cls(
            id=row["id"], channel=row["channel"], recipient=row["recipient"], template=row["template"],
            payload=row["payload"], alert_id=str(row["alert_id"]) if row["alert_id"] else None,
            dispatch_id=str(row["dispatch_id"]) if row["dispatch_id"] else None, attempts=row["attempts"],
            created_at=row["created_at"], provider_ref=row["provider_ref"],
        )


class SendError(Exception):
    """Sending failed; `retryable` False means trying again cannot help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class Notifier(Protocol):
    """`send(message)`; raising means "retry later". A notifier may also offer `send_batch(messages)` returning
    one reference per message (all sent, or raise for all): the outbox then hands it a whole batch at once."""

    async def send(self, message: Message) -> str | None:
        """Deliver the message; return a provider reference if there is one. Raise to retry later."""


@dataclass
class Registry:
    """Notifiers by channel."""

    notifiers: dict[str, Notifier] = field(default_factory=dict)

    def register(self, channel: str, notifier: Notifier) -> None:
        self.notifiers[channel] = notifier

    def get(self, channel: str) -> Notifier | None:
        return self.notifiers.get(channel)


class OwnSender(Protocol):
    """This instance's own outbox sender: work committed in `timeline.leasing(lease_s)` inserted its messages
    leased for lease_s to it, and hands their rows over after commit; it sends them with no claim."""

    lease_s: float

    def hand(self, rows: list) -> None: ...


class BrokerError(RuntimeError):
    """The broker refused or did not answer an account change."""


class BrokerAccounts(Protocol):
    """Where device credentials take effect; alertd's database stays the record of them."""

    def topics(self, kind: str, ident: str) -> dict[str, str]:
        """The topics a `button` or `unit` terminal is flashed with, by leaf."""
        ...

    async def add_button(self, device_id: str, password: str) -> None: ...

    async def add_unit(self, unit_id: str, password: str) -> None: ...

    async def set_password(self, username: str, password: str) -> None: ...

    async def remove(self, username: str) -> None: ...

    async def allow_tests(self, device_ids: list[str]) -> int:
        """Let buttons provisioned before test presses existed publish on their test topic; how many changed."""
        ...
