"""A realistic fictional sample region: an oblast-sized rural area with posts, centres and mobile units."""

from __future__ import annotations

import json
import math
import random

from alertd.service.responders import ResponderRecord

# Roughly the size of a Kazakh oblast: ~420 km east-west, ~330 km north-south, centred in the steppe.
CENTRE_LAT, CENTRE_LON = 50.3, 72.9
HALF_LAT, HALF_LON = 1.5, 2.9
DISTRICTS = ["Zhelkent", "Karaozek", "Sarybel", "Ushtobe-Dala"]
_SYLLABLES = ["ak", "kara", "sary", "zhan", "tal", "bel", "ozek", "kol", "tobe", "say", "bulak", "kum", "zhar",
              "tas", "kent", "uzyn", "shy", "bai", "dala", "esil"]


def _village(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 2, 3)))).capitalize()


def _district(lat: float, lon: float) -> str:
    return DISTRICTS[(2 if lat < CENTRE_LAT else 0) + (1 if lon >= CENTRE_LON else 0)]


def _square(lat: float, lon: float, km: float) -> str:
    dlat = km / 111.2
    dlon = km / (111.2 * math.cos(math.radians(lat)))
    ring = [[lon - dlon, lat - dlat], [lon + dlon, lat - dlat], [lon + dlon, lat + dlat], [lon - dlon, lat + dlat],
            [lon - dlon, lat - dlat]]
    return json.dumps({"type": "Polygon", "coordinates": [ring]})


def responders(seed: int = 7, police: int = 42, centres: int = 4, units: int = 8) -> list[ResponderRecord]:
    rng = random.Random(seed)
    out: list[ResponderRecord] = []

    def point() -> tuple[float, float]:
        return (CENTRE_LAT + rng.uniform(-HALF_LAT, HALF_LAT), CENTRE_LON + rng.uniform(-HALF_LON, HALF_LON))

    for i in range(1, police + 1):
        lat, lon = point()
        village = _village(rng)
        out.append(ResponderRecord(
            id=f"pp-{i:03d}", kind="police_post", name=f"{village} police post", lat=lat, lon=lon,
            region=_district(lat, lon), phone=f"+7700100{i:04d}", language=rng.choice(["kk", "ru"]),
            jurisdiction=_square(lat, lon, 18.0) if i % 3 == 0 else None))
    for i in range(1, centres + 1):
        lat, lon = point()
        out.append(ResponderRecord(
            id=f"cc-{i:02d}", kind="crisis_centre", name=f"{_village(rng)} crisis centre", lat=lat, lon=lon,
            region=_district(lat, lon), phone=f"+7700200{i:04d}", language="ru"))
    for i in range(1, units + 1):
        lat, lon = point()
        out.append(ResponderRecord(
            id=f"mu-{i:02d}", kind="mobile_unit", name=f"Mobile unit {i}", lat=lat, lon=lon,
            region=_district(lat, lon), phone=f"+7700300{i:04d}", language=rng.choice(["kk", "ru", "en"])))
    return out
