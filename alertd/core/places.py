"""Where an alert is, in words a responder can drive to: "14 km NE of Zhanaarka". Pure functions.

The nearest named place (alertd/service/places.py finds it) gives a distance and a direction FROM the place TO the
alert. The words never say more than the dispatch's coordinates already do (rounded to ~100 m, policy.approximate):
distances are rounded to 100 m below 10 km and to the kilometre above, directions are one of 8 compass points
(a 45-degree sector: at 800 m that is ~600 m wide), and an alert within 50 m of a place is "at" it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, overload

EARTH_RADIUS_M = 6_371_008.8  # the mean radius; haversine on it is within 0.5% of the ellipsoid
# Beyond this the nearest place is no help finding her (and a gazetteer with a hole would send responders astray).
MAX_DISTANCE_M = 100_000
COMPASS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")
COMPASS_LABEL = {
    "en": dict(zip(COMPASS, COMPASS, strict=True)),
    "ru": dict(zip(COMPASS, ("С", "СВ", "В", "ЮВ", "Ю", "ЮЗ", "З", "СЗ"), strict=True)),
    "kk": dict(zip(COMPASS, ("С", "СШ", "Ш", "ОШ", "О", "ОБ", "Б", "СБ"), strict=True)),
}
# Uninflected on purpose: a name in a Russian or Kazakh sentence would need its case ending ("от Жанаарки"), which
# cannot be derived reliably; "н.п." (населённый пункт) and "е.м." (елді мекен) carry the case instead.
PHRASE = {
    "en": ("{dist} {dir} of {name}", "at {name}"),
    "ru": ("{dist} к {dir} от н.п. {name}", "н.п. {name}"),
    "kk": ("{name} е.м. {dir} {dist}", "{name} е.м."),
}
LANGUAGES = ("kk", "ru", "en")
UNITS = {"en": ("m", "km"), "ru": ("м", "км"), "kk": ("м", "км")}


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial great-circle bearing from point 1 to point 2, degrees clockwise from north in [0, 360)."""
    if abs(lat1) >= 90.0 - 1e-9:  # at a pole every way is south (north); atan2 would answer by longitude
        return 180.0 if lat1 > 0 else 0.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)  # sin/cos make a difference across the antimeridian (+-360) harmless
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360.0


def compass8(bearing: float) -> str:
    """The 8-point compass direction of a bearing: N covers [337.5, 22.5), NE [22.5, 67.5), and so on."""
    return COMPASS[int(((bearing % 360.0) + 22.5) // 45.0) % 8]


def rounded_m(distance: float) -> int:
    """A distance as a responder is told it: to 100 m below 10 km, to the kilometre from there."""
    if distance < 9_950:
        return round(distance / 100.0) * 100
    return round(distance / 1000.0) * 1000


def distance_text(metres: int, language: str = "en") -> str:
    """"800 m", "2.5 km" ("2,5 км" in ru/kk), "14 km" for a distance already rounded_m."""
    m_unit, km_unit = UNITS.get(language, UNITS["en"])
    if metres < 1000:
        return f"{metres} {m_unit}"
    if metres < 10_000 and metres % 1000:
        km = f"{metres / 1000:.1f}"
        return f"{km if language == 'en' else km.replace('.', ',')} {km_unit}"
    return f"{metres // 1000} {km_unit}"


@dataclass(frozen=True)
class Place:
    """A named place from the gazetteer: its names (ru and kk only when the gazetteer has them) and where it is."""

    geonameid: int
    name: str
    asciiname: str
    lat: float
    lon: float
    name_ru: str | None = None
    name_kk: str | None = None
    population: int = 0

    @classmethod
    def from_row(cls, row: Any, prefix: str = "") -> Place:
        """From a row's columns, each named with `prefix` (`place_` where the row holds something else too)."""
        return cls(**{name: row[prefix + name] for name in (
            "geonameid", "name", "asciiname", "lat", "lon", "name_ru", "name_kk", "population")})

    def name_in(self, language: str) -> str:
        """The name to print for a reader of `language`: Kazakh, else Russian, else ASCII (so English SMS stays
        GSM-7: 160 characters a segment instead of 70)."""
        if language == "kk":
            return self.name_kk or self.name_ru or self.asciiname or self.name
        if language == "ru":
            return self.name_ru or self.asciiname or self.name
        return self.asciiname or self.name


@dataclass(frozen=True)
class Relation:
    """Where an alert is relative to a place: rounded distance, bearing FROM the place TO the alert."""

    place: Place
    distance_m: int  # rounded_m
    bearing: str | None  # a COMPASS point; None when the alert is at the place

    def payload(self) -> dict[str, Any]:
        """The dispatch payload's `place` (outbox JSON): names in every language, rendered per reader later."""
        return {"geonameid": self.place.geonameid, "name": self.place.name, "asciiname": self.place.asciiname,
                "name_ru": self.place.name_ru, "name_kk": self.place.name_kk, "distance_m": self.distance_m,
                "bearing": self.bearing}


def relate(place: Place, lat: float, lon: float) -> Relation | None:
    """How far and in which direction (lat, lon) lies from `place`; None when it is farther than MAX_DISTANCE_M."""
    exact = distance_m(place.lat, place.lon, lat, lon)
    if exact > MAX_DISTANCE_M:
        return None
    metres = rounded_m(exact)
    return Relation(place, metres, None if metres == 0 else compass8(bearing_deg(place.lat, place.lon, lat, lon)))


def describe(payload: dict[str, Any], language: str) -> str:
    """The words for a dispatch payload's `place` in a reader's language: "14 km NE of Zhanaarka"."""
    lang = language if language in PHRASE else "en"
    place = Place(geonameid=payload.get("geonameid") or 0, name=payload.get("name") or "",
                  asciiname=payload.get("asciiname") or "", lat=0.0, lon=0.0, name_ru=payload.get("name_ru"),
                  name_kk=payload.get("name_kk"))
    near, at = PHRASE[lang]
    bearing = payload.get("bearing")
    if not bearing or not payload.get("distance_m"):
        return at.format(name=place.name_in(lang))
    return near.format(dist=distance_text(int(payload["distance_m"]), lang),
                       dir=COMPASS_LABEL[lang].get(bearing, bearing), name=place.name_in(lang))


def maps_url(lat: float, lon: float) -> str:
    """A link every phone and terminal opens, to coordinates already rounded to ~100 m (as the SMS's)."""
    return f"https://maps.google.com/?q={lat:.3f},{lon:.3f}"


@overload
def for_reader(payload: dict[str, Any], language: str) -> dict[str, Any]: ...


@overload
def for_reader(payload: None, language: str) -> None: ...


def for_reader(payload: dict[str, Any] | None, language: str) -> dict[str, Any] | None:
    """The `place` a reader gets (unit terminal, console): `{name, distance_m, bearing, text}` in their language."""
    if not payload:
        return None
    lang = language if language in PHRASE else "en"
    name = Place(0, payload.get("name") or "", payload.get("asciiname") or "", 0.0, 0.0, payload.get("name_ru"),
                 payload.get("name_kk")).name_in(lang)
    return {"name": name, "distance_m": payload.get("distance_m"), "bearing": payload.get("bearing"),
            "text": describe(payload, lang)}
