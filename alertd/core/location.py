"""Choose an alert's best location from what it has: most recent accurate fix, else best fix, else home."""

from __future__ import annotations

import math
from collections.abc import Iterable

from alertd.core.model import Location

EARTH_RADIUS_M = 6_371_008.8


def best_location(fixes: Iterable[Location], home: Location | None, accurate_m: float) -> Location | None:
    """The location to dispatch on.

    A fix is where she is now; home is only where she lives. So any fix beats home: the most recent fix at
    least as accurate as `accurate_m` wins, and without one the most accurate fix (newest on a tie).
    """
    fixes = list(fixes)
    accurate = [f for f in fixes if f.accuracy_m is not None and f.accuracy_m <= accurate_m]
    if accurate:
        return max(accurate, key=lambda f: f.fix_time)
    if fixes:
        return min(fixes, key=lambda f: (f.accuracy_m if f.accuracy_m is not None else math.inf,
                                         -f.fix_time.timestamp()))
    return home


def distance_m(a: Location, b: Location) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def moved_enough(old: Location | None, new: Location | None, min_move_m: float) -> bool:
    """Whether a new best location is far enough from the old one to re-check who is nearest."""
    if new is None:
        return False
    if old is None:
        return True
    return distance_m(old, new) > max(min_move_m, new.accuracy_m or 0.0)
