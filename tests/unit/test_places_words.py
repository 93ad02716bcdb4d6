"""Distance, direction and words for "14 km NE of Zhanaarka": pure functions, boundaries first."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alertd.core.places import (
    MAX_DISTANCE_M,
    Place,
    bearing_deg,
    compass8,
    describe,
    distance_m,
    distance_text,
    for_reader,
    relate,
    rounded_m,
)

ZHANAARKA = Place(geonameid=1, name="Zhangaarqa", asciiname="Zhanaarka", lat=48.6953, lon=71.6386,
                  name_ru="Жанаарка", name_kk="Жаңаарқа", population=12000)


def km_from(place: Place, km: float, bearing: float) -> tuple[float, float]:
    """A point `km` from the place along `bearing` (spherical, exact enough for these tests)."""
    d = km * 1000 / 6_371_008.8
    p1, l1, b = math.radians(place.lat), math.radians(place.lon), math.radians(bearing)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), (math.degrees(l2) + 540) % 360 - 180


def test_exactly_north_and_the_compass_sector_boundaries():
    assert bearing_deg(50.0, 70.0, 50.1, 70.0) == pytest.approx(0.0, abs=1e-9)
    assert compass8(0.0) == "N"
    assert compass8(359.0) == "N"
    assert compass8(359.9999) == "N"
    assert compass8(360.0) == "N"
    assert compass8(337.5) == "N"  # sectors are half-open: [337.5, 22.5) is north
    assert compass8(337.4999) == "NW"
    assert compass8(22.4999) == "N"
    assert compass8(22.5) == "NE"
    assert compass8(45.0) == "NE"
    assert compass8(90.0) == "E"
    assert compass8(180.0) == "S"
    assert compass8(202.5) == "SW"
    assert compass8(270.0) == "W"
    assert compass8(-1.0) == "N"  # a negative bearing is the same direction


def test_direction_is_from_the_place_to_the_alert():
    lat, lon = km_from(ZHANAARKA, 14.0, 45.0)
    rel = relate(ZHANAARKA, lat, lon)
    assert (rel.distance_m, rel.bearing) == (14_000, "NE")
    back = Place(2, "Alert", "Alert", lat, lon)
    assert relate(back, ZHANAARKA.lat, ZHANAARKA.lon).bearing == "SW"


def test_a_point_just_west_of_north_is_north():
    lat, lon = km_from(ZHANAARKA, 5.0, 359.0)
    assert relate(ZHANAARKA, lat, lon).bearing == "N"


def test_across_the_antimeridian():
    fiji = Place(3, "Rabi", "Rabi", -16.5, 179.95)
    lat, lon = -16.5, -179.95  # 0.1 degree east, across 180
    assert bearing_deg(fiji.lat, fiji.lon, lat, lon) == pytest.approx(90.0, abs=0.1)
    assert distance_m(fiji.lat, fiji.lon, lat, lon) == pytest.approx(10_660, rel=0.01)
    rel = relate(fiji, lat, lon)
    assert (rel.distance_m, rel.bearing) == (11_000, "E")
    assert relate(Place(4, "W", "W", -16.5, -179.95), -16.5, 179.95).bearing == "W"


def test_at_the_place_itself_has_no_direction():
    rel = relate(ZHANAARKA, ZHANAARKA.lat, ZHANAARKA.lon)
    assert (rel.distance_m, rel.bearing) == (0, None)
    assert describe(rel.payload(), "en") == "at Zhanaarka"
    assert describe(rel.payload(), "ru") == "н.п. Жанаарка"
    assert describe(rel.payload(), "kk") == "Жаңаарқа е.м."
    lat, lon = km_from(ZHANAARKA, 0.049, 120.0)  # within 50 m: at it
    assert relate(ZHANAARKA, lat, lon).bearing is None
    lat, lon = km_from(ZHANAARKA, 0.051, 120.0)  # 100 m: a direction again
    assert (relate(ZHANAARKA, lat, lon).distance_m, relate(ZHANAARKA, lat, lon).bearing) == (100, "SE")


def test_at_a_pole_every_direction_is_south():
    pole = Place(5, "Pole", "Pole", 90.0, 0.0)
    assert relate(pole, 89.9, 123.0).bearing == "S"


@pytest.mark.parametrize(("metres", "rounded", "en", "ru"), [
    (0, 0, "0 m", "0 м"),
    (49, 0, "0 m", "0 м"),
    (51, 100, "100 m", "100 м"),
    (849, 800, "800 m", "800 м"),
    (950, 1000, "1 km", "1 км"),
    (2_460, 2_500, "2.5 km", "2,5 км"),
    (9_949, 9_900, "9.9 km", "9,9 км"),
    (9_950, 10_000, "10 km", "10 км"),
    (14_400, 14_000, "14 km", "14 км"),
    (14_500, 14_000, "14 km", "14 км"),  # round half to even, never finer than a kilometre out here
    (99_600, 100_000, "100 km", "100 км"),
])
def test_distances_are_rounded_as_a_responder_is_told(metres, rounded, en, ru):
    assert rounded_m(metres) == rounded
    assert distance_text(rounded, "en") == en
    assert distance_text(rounded, "ru") == ru
    assert distance_text(rounded, "kk") == ru


def test_words_in_each_language_and_names_falling_back():
    lat, lon = km_from(ZHANAARKA, 14.2, 40.0)
    payload = relate(ZHANAARKA, lat, lon).payload()
    assert describe(payload, "en") == "14 km NE of Zhanaarka"
    assert describe(payload, "ru") == "14 км к СВ от н.п. Жанаарка"
    assert describe(payload, "kk") == "Жаңаарқа е.м. СШ 14 км"
    assert describe(payload, "xx") == "14 km NE of Zhanaarka"
    bare = {**payload, "name_ru": None, "name_kk": None}
    assert describe(bare, "kk") == "Zhanaarka е.м. СШ 14 км"  # no Cyrillic name: the ASCII one
    assert describe({**payload, "name_kk": None}, "kk") == "Жанаарка е.м. СШ 14 км"  # Russian before ASCII
    reader = for_reader(payload, "ru")
    assert reader == {"name": "Жанаарка", "distance_m": 14_000, "bearing": "NE", "text": "14 км к СВ от н.п. Жанаарка"}
    assert for_reader(None, "en") is None


def test_no_place_beyond_reach():
    lat, lon = km_from(ZHANAARKA, MAX_DISTANCE_M / 1000 + 1, 10.0)
    assert relate(ZHANAARKA, lat, lon) is None


@given(st.floats(-89.9, 89.9), st.floats(-180, 180), st.floats(0, 99.0), st.floats(0, 359.999))
def test_words_never_more_precise_than_the_dispatch_coordinates(lat, lon, km, bearing):
    """The SMS link carries coordinates rounded to 0.001 degree (~111 m north-south): the distance said is a
    multiple of 100 m (of 1 km from 10 km), within half of that of the truth; the bearing is the one travelled."""
    place = Place(9, "P", "P", lat, lon)
    alat, alon = km_from(place, km, bearing)
    rel = relate(place, alat, alon)
    assert rel is not None
    assert rel.distance_m % (1000 if rel.distance_m >= 10_000 else 100) == 0
    assert abs(rel.distance_m - distance_m(lat, lon, alat, alon)) <= (500 if rel.distance_m >= 10_000 else 50)
    if km > 0.2 and abs(lat) < 80:
        off = (bearing_deg(lat, lon, alat, alon) - bearing + 180) % 360 - 180
        assert abs(off) < 1e-6
        # the words name the bearing actually travelled (on a sector's edge, 1e-6 degrees can cross it)
        assert rel.bearing == compass8(bearing_deg(lat, lon, alat, alon))
