"""The gazetteer: import a GeoNames dump in one transaction, find the nearest named place to alerts."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict
from datetime import datetime

import asyncpg

from alertd.core import geonames
from alertd.core.model import Location
from alertd.core.places import LANGUAGES, Place, Relation, describe, for_reader, relate
from alertd.store import queries

_STAGED = ("geonameid", "name", "asciiname", "name_ru", "name_kk", "feature_class", "feature_code", "country",
           "admin1", "population", "lat", "lon", "modified")


class DumpError(ValueError):
    """The dump has bad lines: nothing was imported. `problems` lists them with their line numbers."""

    def __init__(self, tally: geonames.Tally) -> None:
        self.problems = tally.summary()
        self.message = (f"{tally.bad_lines} bad line{'s' if tally.bad_lines != 1 else ''} in the file, "
                        f"nothing imported (--skip-bad imports the rest):")
        super().__init__(f"{self.message} {'; '.join(self.problems[:5])}")


def _records(places: Iterator[geonames.PlaceRecord]) -> Iterator[tuple]:
    """The COPY's rows; asyncpg pulls them as it sends, so the dump is never held in memory."""
    for record in places:
        values = asdict(record)
        yield tuple(values[c] for c in _STAGED)


async def import_dump(conn: asyncpg.Connection, lines: Iterable[bytes | str], now: datetime, *,
                      classes: str = geonames.DEFAULT_CLASSES, skip_bad: bool = False) -> dict:
    """Load a dump into the gazetteer, all or nothing: COPY into a staging table, then one merge by geonameid (a
    re-import updates every place it holds and leaves the others). With bad lines, DumpError and nothing changes,
    unless skip_bad: then they are left out and listed."""
    tally = geonames.Tally()
    async with conn.transaction():
        await conn.execute(queries.create_places_stage)
        await conn.copy_records_to_table("places_import", records=_records(geonames.read(lines, tally, classes)),
                                         columns=list(_STAGED))
        if tally.bad_lines and not skip_bad:
            raise DumpError(tally)  # the transaction rolls back: nothing staged or merged
        merged = await conn.fetchrow(queries.merge_places, now)
    result = {"lines": tally.lines, "imported": tally.kept, "inserted": merged["inserted"],
              "updated": merged["updated"], "left_out": tally.left_out, "classes": classes}
    if tally.bad_lines:
        result.update(skipped_bad=tally.bad_lines, problems=tally.summary())
    return result


async def nearest_to(conn: asyncpg.Connection, locs: list[Location]) -> list[Relation | None]:
    """For each location, where it lies from the nearest named place (None: no place within reach), one query."""
    found: list[Relation | None] = [None] * len(locs)
    if not locs:
        return found
    for row in await conn.fetch(queries.find_nearest_places, [loc.lon for loc in locs], [loc.lat for loc in locs]):
        i = row["n"] - 1
        found[i] = relate(Place.from_row(row), locs[i].lat, locs[i].lon)
    return found


async def within(conn: asyncpg.Connection, west: float, south: float, east: float, north: float,
                 limit: int = 200) -> list[dict]:
    """The places to label on a map showing this box, the most populous first."""
    rows = await conn.fetch(queries.list_places_within, west, south, east, north, limit)
    return [{"geonameid": r["geonameid"], "name": r["name"], "asciiname": r["asciiname"], "name_ru": r["name_ru"],
             "name_kk": r["name_kk"], "population": r["population"], "feature_code": r["feature_code"],
             "lat": round(r["lat"], 5), "lon": round(r["lon"], 5)} for r in rows]


def console_place(row, loc: Location | None) -> dict | None:
    """The `place` of a console read (a row with place_* columns from a LATERAL KNN probe, and the alert's best
    location): `{name, distance_m, bearing, text}` in English plus `texts` in every console language."""
    if loc is None or row["place_geonameid"] is None:
        return None
    relation = relate(Place.from_row(row, "place_"), loc.lat, loc.lon)
    if relation is None:
        return None
    payload = relation.payload()
    return {**for_reader(payload, "en"), "names": {lang: for_reader(payload, lang)["name"] for lang in LANGUAGES},
            "texts": {lang: describe(payload, lang) for lang in LANGUAGES}}
