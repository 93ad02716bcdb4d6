"""Read GeoNames gazetteer dumps (cities1000.txt, cities500.txt, country files such as KZ.txt). Pure: no I/O here
beyond the lines it is handed.

The format (download.geonames.org/export/dump/readme.txt): UTF-8, one place a line, 19 tab-separated columns:
geonameid, name, asciiname, alternatenames (comma-separated), latitude, longitude, feature class, feature code,
country code, cc2, admin1 code, admin2 code, admin3 code, admin4 code, population, elevation, dem, timezone,
modification date. cities* files hold only populated places (class P); country files hold every feature (streams,
hills, wells, farms...): only the classes asked for are kept (P by default), and never places GeoNames marks as
historical, abandoned or destroyed (PPLH, PPLQ, PPLW, ...), which would send a responder to a ruin.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date

COLUMNS = 19
FEATURE_CLASSES = "ADHLPRSTUV"  # GeoNames' nine classes
DEFAULT_CLASSES = "P"
# Feature codes that name no place anyone lives at or could find today.
GONE = frozenset({"PPLH", "PPLQ", "PPLW", "PPLCH", "STMH", "LKH", "HSTS", "RUIN"})
# Kazakh letters Russian has not: a Cyrillic alternate name with one of them is taken as the Kazakh name; "і" too
# (Kazakh has it), unless the name also has a letter only Ukrainian or Belarusian has.
_KAZAKH = set("әғқңөұүһӘҒҚҢӨҰҮҺ")
_UKRAINIAN_BELARUSIAN = set("їЇєЄґҐўЎ")
_CYRILLIC = re.compile(r"^[\u0400-\u04FF\s\-'.()0-9]+$")
_NOT_RUSSIAN = set("іІ") | _UKRAINIAN_BELARUSIAN | _KAZAKH
MAX_PROBLEMS = 50  # listed one by one; more are counted


class LineError(ValueError):
    """One line cannot be read; the message says why, in words the person with the file can act on."""


@dataclass(frozen=True)
class PlaceRecord:
    """One gazetteer entry, as the places table stores it."""

    geonameid: int
    name: str
    asciiname: str
    name_ru: str | None
    name_kk: str | None
    feature_class: str
    feature_code: str
    country: str
    admin1: str
    population: int
    lat: float
    lon: float
    modified: date | None


def _int(value: str, what: str, *, empty: int | None = None) -> int:
    text = value.strip()
    if not text and empty is not None:
        return empty
    if not text.lstrip("-").isdigit() or not text.isascii():
        raise LineError(f"{what} must be a whole number, got {value[:40]!r}")
    return int(text)


def _degrees(value: str, what: str, limit: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise LineError(f"{what} must be a number in decimal degrees, got {value[:40]!r}") from None
    if not -limit <= number <= limit:  # also refuses nan and inf
        raise LineError(f"{what} must be within [-{limit:g}, {limit:g}], got {value[:40]!r}")
    return number


def _text(value: str, what: str, limit: int, *, required: bool = False) -> str:
    text = value.strip()
    if required and not text:
        raise LineError(f"{what} is empty")
    if len(text) > limit:
        raise LineError(f"{what} is longer than {limit} characters")
    if "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise LineError(f"{what} holds characters that cannot be stored (NUL or a lone surrogate)")
    return text


def local_names(alternatenames: str) -> tuple[str | None, str | None]:
    """(Russian, Kazakh) names among GeoNames' alternate names, which carry no language tag in these files: the
    first all-Cyrillic name with a Kazakh letter is Kazakh, the first with only Russian letters is Russian.
    A heuristic: it can take a Mongolian or Bulgarian spelling; the full tagged list is alternateNamesV2.zip."""
    ru = kk = None
    for alt in alternatenames.split(","):
        alt = alt.strip()
        if not alt or len(alt) > 200 or not _CYRILLIC.match(alt):
            continue
        letters = set(alt)
        if kk is None and (letters & _KAZAKH or (letters & set("іІ") and not letters & _UKRAINIAN_BELARUSIAN)):
            kk = alt
        elif ru is None and not letters & _NOT_RUSSIAN:
            ru = alt
        if ru and kk:
            break
    return ru, kk


def parse_line(line: str, classes: str = DEFAULT_CLASSES) -> PlaceRecord | None:
    """One line of a dump: its place, None for a feature not kept (another class, a ruin), or LineError."""
    cols = line.rstrip("\r\n").split("\t")
    if len(cols) != COLUMNS:
        raise LineError(f"expected {COLUMNS} tab-separated columns, found {len(cols)}"
                        + (" (is this a GeoNames dump? alternateNames and admin-code files have other columns)"
                           if len(cols) < COLUMNS else ""))
    feature_class = cols[6].strip()
    feature_code = _text(cols[7], "feature code", 10)
    if feature_class and (len(feature_class) != 1 or feature_class not in FEATURE_CLASSES):
        raise LineError(f"feature class must be one of {', '.join(FEATURE_CLASSES)}, got {cols[6][:20]!r}")
    geonameid = _int(cols[0], "geonameid")
    if geonameid <= 0:
        raise LineError(f"geonameid must be positive, got {geonameid}")
    name = _text(cols[1], "name", 200, required=True)
    lat = _degrees(cols[4], "latitude", 90.0)
    lon = _degrees(cols[5], "longitude", 180.0)
    population = _int(cols[14], "population", empty=0)
    if population < 0:
        raise LineError(f"population must not be negative, got {population}")
    modified = None
    if cols[18].strip():
        try:
            modified = date.fromisoformat(cols[18].strip())
        except ValueError:
            raise LineError(f"modification date must be YYYY-MM-DD, got {cols[18][:20]!r}") from None
    if not feature_class or feature_class not in classes or feature_code in GONE:
        return None
    ru, kk = local_names(_text(cols[3], "alternatenames", 20_000))
    return PlaceRecord(
        geonameid=geonameid, name=name, asciiname=_text(cols[2], "asciiname", 200) or name, name_ru=ru, name_kk=kk,
        feature_class=feature_class, feature_code=feature_code, country=_text(cols[8], "country code", 2),
        admin1=_text(cols[10], "admin1 code", 20), population=population, lat=lat, lon=lon, modified=modified)


@dataclass
class Tally:
    """What reading a dump found: lines read, places kept, features left out, and the bad lines."""

    lines: int = 0
    kept: int = 0
    left_out: int = 0
    problems: list[str] = field(default_factory=list)
    bad_lines: int = 0

    def problem(self, lineno: int, message: str) -> None:
        self.bad_lines += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"line {lineno}: {message}")

    def summary(self) -> list[str]:
        """Every problem listed, and how many more there were beyond MAX_PROBLEMS."""
        more = self.bad_lines - len(self.problems)
        return self.problems + ([f"... and {more} more bad lines"] if more > 0 else [])


def read(lines: Iterable[bytes | str], tally: Tally, classes: str = DEFAULT_CLASSES) -> Iterator[PlaceRecord]:
    """The places of a dump, one at a time (cities1000 has ~150k lines; nothing is held in memory). Lines may be
    bytes (a file opened in binary: each is decoded as UTF-8 here, so a bad byte is reported with its line number).
    Blank lines and `#` comments are skipped; a bad line is counted in `tally` with its number, and reading goes on
    so that all of them are reported at once."""
    for lineno, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                tally.lines += 1
                tally.problem(lineno, f"not UTF-8 (byte {raw[exc.start]:#04x} at column {exc.start + 1}); "
                                      "GeoNames dumps are UTF-8")
                continue
        else:
            line = raw
        if lineno == 1:
            line = line.removeprefix("\ufeff")
        if not line.strip() or line.startswith("#"):
            continue
        tally.lines += 1
        try:
            record = parse_line(line, classes)
        except LineError as exc:
            tally.problem(lineno, str(exc))
            continue
        if record is None:
            tally.left_out += 1
            continue
        tally.kept += 1
        yield record


def format_line(record: PlaceRecord, alternatenames: str = "", elevation: str = "", timezone: str = "") -> str:
    """A dump line for a record (the demo writes its invented gazetteer with it; the tests round-trip it)."""
    cols = [str(record.geonameid), record.name, record.asciiname, alternatenames, f"{record.lat:.5f}",
            f"{record.lon:.5f}", record.feature_class, record.feature_code, record.country, "", record.admin1, "",
            "", "", str(record.population), elevation, "", timezone,
            record.modified.isoformat() if record.modified else ""]
    return "\t".join(cols)


def classes_option(value: str) -> str:
    """The --classes option: letters among FEATURE_CLASSES ("P", "PS", "P,S"); ValueError otherwise."""
    letters = "".join(value.replace(",", "").split()).upper()
    if not letters or any(c not in FEATURE_CLASSES for c in letters):
        raise ValueError(f"feature classes are letters among {FEATURE_CLASSES} (P populated places, S spots such as "
                         f"farms and stations, H water, T hills...), got {value!r}")
    return "".join(sorted(set(letters)))
