"""Dispatch and escalation policy: pure decisions the service layer carries out."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from alertd.core.model import Location
from alertd.core.places import Relation

# No 0/O, 1/I/L, 5/S, 2/Z: responders read codes off a small screen and type them back on a keypad.
CODE_ALPHABET = "346789ABCDEFGHJKMNPQRTUVWXY"
CODE_LENGTH = 6


def new_code() -> str:
    """A short dispatch code a responder quotes in an SMS reply: one uniform draw among all 27^6 codes, spelt in
    the alphabet (one call to the system's randomness, not one per character)."""
    n = secrets.randbelow(len(CODE_ALPHABET) ** CODE_LENGTH)
    chars = []
    for _ in range(CODE_LENGTH):
        n, digit = divmod(n, len(CODE_ALPHABET))
        chars.append(CODE_ALPHABET[digit])
    return "".join(chars)


@dataclass(frozen=True)
class Escalation:
    """What to do after a missed deadline."""

    action: str  # "next" (next-nearest not yet tried), "broadcast" (whole region), "none"
    reason: str


def after_miss(*, misses: int, max_misses: int, was_broadcast: bool, kind_acknowledged: bool) -> Escalation:
    """Decide the escalation after a dispatch of one kind missed its deadline."""
    if kind_acknowledged:
        return Escalation("none", "another responder of this kind acknowledged")
    if was_broadcast:
        return Escalation("none", "already sent to the whole region")
    if misses >= max_misses:
        return Escalation("broadcast", f"{misses} deadlines missed")
    return Escalation("next", f"deadline missed ({misses} of {max_misses})")


def approximate(value: float) -> float:
    """Round a coordinate to ~100 m: enough to drive to, not enough to pin a house in a log or an SMS."""
    return round(value, 3)


def dispatch_payload(*, code: str, kind: str, location: Location, deadline: datetime, priority: str,
                     duress: bool, attempt: int, place: Relation | None = None) -> dict[str, Any]:
    """What a responder is told about a dispatch: a code and a place (with the nearest named place, its distance
    and direction, when the gazetteer has one within reach), never who she is."""
    return {
        "code": code,
        "kind": kind,
        "lat": approximate(location.lat),
        "lon": approximate(location.lon),
        "accuracy_m": None if location.accuracy_m is None else round(location.accuracy_m),
        "deadline": deadline.isoformat(),
        "priority": priority,
        "duress": duress,
        "attempt": attempt,
        "place": place.payload() if place else None,
    }
