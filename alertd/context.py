"""What every service call needs: settings and the clock."""

from __future__ import annotations

from dataclasses import dataclass, field

from alertd.clock import Clock, SystemClock
from alertd.settings import Settings


@dataclass(frozen=True)
class Context:
    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
