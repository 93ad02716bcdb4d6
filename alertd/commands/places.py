"""places: the gazetteer responders are told alerts are near (`alertd places import FILE`, `alertd places near`)."""

from __future__ import annotations

import argparse
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alertd.clock import SystemClock
from alertd.commands import CommandError
from alertd.core import geonames
from alertd.core.model import Location
from alertd.core.places import for_reader
from alertd.service import places
from alertd.settings import Settings
from alertd.store.db import connect
from alertd.store.queries import queries

IMPORT_HELP = """\
FILE is a GeoNames dump: cities1000.txt (or cities500/5000/15000), a country file such as KZ.txt, or the .zip
they are downloaded as (https://download.geonames.org/export/dump/). The import is all or nothing, in one
transaction; importing a newer dump updates places by geonameid and keeps the others. GeoNames data is licensed
CC BY 4.0: credit "GeoNames (geonames.org)" wherever its names are shown (docs/operations.md)."""


def register(sub) -> None:
    p = sub.add_parser("places", help="the gazetteer of named places (GeoNames) dispatches are described by")
    psub = p.add_subparsers(dest="action", required=True)
    imp = psub.add_parser("import", help="load a GeoNames dump (cities1000.txt, KZ.txt, or its .zip)",
                          description="Load a GeoNames dump into the gazetteer.", epilog=IMPORT_HELP,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    imp.add_argument("file", type=Path, help="a GeoNames .txt dump or its .zip")
    imp.add_argument("--classes", default=geonames.DEFAULT_CLASSES, type=_classes,
                     help="GeoNames feature classes to keep (default P, populated places; PS adds spots such as "
                          "farms and railway stations)")
    imp.add_argument("--skip-bad", action="store_true",
                     help="import the good lines and list the bad ones (default: any bad line imports nothing)")
    imp.set_defaults(handler=cmd_places_import)
    near = psub.add_parser("near", help="how a dispatch at LAT LON describes its place, in kk, ru and en")
    near.add_argument("lat", type=float)
    near.add_argument("lon", type=float)
    near.set_defaults(handler=cmd_places_near)


def _classes(value: str) -> str:
    try:
        return geonames.classes_option(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


@contextmanager
def open_dump(path: Path) -> Iterator[Iterator[bytes]]:
    """The dump's lines as bytes: the file itself, or the one .txt inside a GeoNames .zip (its readme aside)."""
    if not path.is_file():
        raise CommandError(f"no such file: {path}")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            inside = [n for n in archive.namelist() if n.endswith(".txt") and "readme" not in n.lower()]
            if len(inside) != 1:
                raise CommandError(f"{path} holds {len(inside)} .txt files; expected one GeoNames dump")
            with archive.open(inside[0]) as raw:
                yield iter(raw)
        return
    with path.open("rb") as raw:
        yield iter(raw)


async def cmd_places_import(args, settings: Settings) -> dict:
    conn = await connect(settings.database_url)
    try:
        with open_dump(args.file) as lines:
            result = await places.import_dump(conn, lines, SystemClock().now(), classes=args.classes,
                                              skip_bad=args.skip_bad)
        result["places"] = await conn.fetchval(queries.count_places)
    except places.DumpError as exc:
        raise CommandError(exc.message, problems=exc.problems) from None
    finally:
        await conn.close()
    return {"file": str(args.file), **result}


async def cmd_places_near(args, settings: Settings) -> dict:
    loc = Location(args.lat, args.lon, None, "cli", SystemClock().now())  # refuses a point off the globe
    conn = await connect(settings.database_url)
    try:
        relation = (await places.nearest_to(conn, [loc]))[0]
    finally:
        await conn.close()
    if relation is None:
        return {"place": None, "why": "no place in the gazetteer within 100 km (alertd places import FILE)"}
    payload = relation.payload()
    return {"place": payload, **{lang: for_reader(payload, lang)["text"] for lang in ("kk", "ru", "en")}}
