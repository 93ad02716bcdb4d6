"""A realistic fictional sample region: an oblast-sized rural area with posts, centres and mobile units."""

from __future__ import annotations

import json
import math
import random
from datetime import date

from alertd.core.geonames import PlaceRecord, format_line
from alertd.service.responders import ResponderRecord

# Roughly the size of a Kazakh oblast: ~420 km east-west, ~330 km north-south, centred in the steppe.
CENTRE_LAT, CENTRE_LON = 50.3, 72.9
HALF_LAT, HALF_LON = 1.5, 2.9
DISTRICTS = ["Zhelkent", "Karaozek", "Sarybel", "Ushtobe-Dala"]
_SYLLABLES = ["ak", "kara", "sary", "zhan", "tal", "bel", "ozek", "kol", "tobe", "say", "bulak", "kum", "zhar",
              "tas", "kent", "uzyn", "shy", "bai", "dala", "esil"]


# Each syllable in Russian and in Kazakh spelling, so the invented villages have names in all three languages.
_CYRILLIC = {"ak": ("ак", "ақ"), "kara": ("кара", "қара"), "sary": ("сары", "сары"), "zhan": ("жан", "жаң"),
             "tal": ("тал", "тал"), "bel": ("бел", "бел"), "ozek": ("озек", "өзек"), "kol": ("коль", "көл"),
             "tobe": ("тобе", "төбе"), "say": ("сай", "сай"), "bulak": ("булак", "бұлақ"), "kum": ("кум", "құм"),
             "zhar": ("жар", "жар"), "tas": ("тас", "тас"), "kent": ("кент", "кент"), "uzyn": ("узын", "ұзын"),
             "shy": ("шы", "шы"), "bai": ("бай", "бай"), "dala": ("дала", "дала"), "esil": ("есиль", "есіл")}
# Invented places get ids GeoNames will never reach (its ids are below 20 million): a real dump imported later
# adds to them instead of overwriting them.
DEMO_GEONAMEID = 990_000_000


def _spelt(name: str, script: int) -> str:
    """A name made of _SYLLABLES in Cyrillic (script 0: Russian, 1: Kazakh), longest syllable first."""
    out, rest = "", name.lower()
    while rest:
        syllable = next((s for s in sorted(_CYRILLIC, key=len, reverse=True) if rest.startswith(s)), None)
        if syllable is None:
            return ""
        out, rest = out + _CYRILLIC[syllable][script], rest[len(syllable):]
    return out.capitalize()


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


def gazetteer(seed: int = 11, extra: int = 24) -> list[PlaceRecord]:
    """The region's invented places: the village each police post is named after (a few km from the post), the four
    district centres, and `extra` hamlets scattered between them. Deterministic, like responders()."""
    rng = random.Random(seed)
    places: list[PlaceRecord] = []

    def add(name: str, lat: float, lon: float, code: str, population: int) -> None:
        ru, kk = _spelt(name, 0) or None, _spelt(name, 1) or None
        places.append(PlaceRecord(
            geonameid=DEMO_GEONAMEID + len(places) + 1, name=name, asciiname=name, name_ru=ru,
            name_kk=kk if kk != ru else None,  # the same spelling: the Russian one serves both (as in a dump)
            feature_class="P", feature_code=code, country="KZ", admin1="",
            population=population, lat=round(lat, 5), lon=round(lon, 5), modified=date(2026, 1, 1)))

    for r in responders():
        if r.kind == "police_post":
            add(r.name.removesuffix(" police post"), r.lat + rng.uniform(-0.03, 0.03), r.lon + rng.uniform(-0.04, 0.04),
                "PPL", rng.randrange(300, 6000, 10))
    for i, district in enumerate(DISTRICTS):
        lat = CENTRE_LAT + (0.75 if i < 2 else -0.75)
        lon = CENTRE_LON + (-1.45 if i % 2 == 0 else 1.45)
        add(district, lat, lon, "PPLA2", rng.randrange(9000, 25000, 100))
    for _ in range(extra):
        add(_village(rng), CENTRE_LAT + rng.uniform(-HALF_LAT, HALF_LAT), CENTRE_LON + rng.uniform(-HALF_LON, HALF_LON),
            "PPL", rng.randrange(40, 900, 10))
    return places


def gazetteer_lines() -> list[str]:
    """The invented gazetteer as a GeoNames dump, so the demo loads it through `alertd places import`'s own path."""
    return [format_line(p, alternatenames=",".join(n for n in (p.name_ru, p.name_kk) if n)) for p in gazetteer()]
