"""Read responder directories: CSV (id,kind,name,lat,lon,phone,region; comma, semicolon or tab separated) or
GeoJSON Point features."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from alertd.core import validate
from alertd.core.model import Invalid
from alertd.service.responders import ResponderRecord

REQUIRED_COLUMNS = ("id", "kind", "name", "lat", "lon", "region")
# Spreadsheet programs write commas in English locales and semicolons where the comma is the decimal mark
# (Russian, Kazakh); tab-separated text comes from copying cells.
SEPARATORS = (",", ";", "\t")
SAVE_AS_CSV = "save it as CSV (UTF-8) in the spreadsheet program and import that file"
# The first bytes of files people take for a table: an .xlsx/.ods is a zip, an old .xls an OLE2 compound file.
_WORKBOOK_MAGIC = {b"PK\x03\x04": "a spreadsheet workbook (.xlsx or .ods)",
                   b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls)"}


class FileError(ValueError):
    """The file cannot be imported; `problems` lists every bad row so all can be fixed at once. `message` is what
    to print first: the problem itself when there is one, else how many there are (each is then printed once)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
        self.problems = problems if len(problems) > 1 else None
        self.message = (f"{problems[0]} (nothing imported)" if len(problems) == 1
                        else f"{len(problems)} problems, nothing imported:")


_TRUE, _FALSE = ("1", "true", "yes", "on", "y"), ("0", "false", "no", "off", "n")


def _bool(value, default: bool = True) -> bool:
    if value in (None, ""):
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in _TRUE + _FALSE:
        raise Invalid(f"on_duty must be true/false, yes/no or 1/0, got {value!r}")
    return text in _TRUE


def _degrees(name: str, value) -> float:
    """A coordinate; a decimal comma (50,1) is read as the spreadsheet meant it."""
    text = str(value).strip().replace(",", ".") if isinstance(value, str) else value
    try:
        return float(text)
    except (TypeError, ValueError, OverflowError):
        raise Invalid(f"{name} must be a number in decimal degrees, got {value!r}") from None


def _check_storable(value) -> None:
    if not validate.storable(str(value)):
        raise Invalid("text must not contain NUL or unpaired surrogate characters")


def _record(props: dict, lat, lon, jurisdiction: str | None) -> ResponderRecord:
    lat_f, lon_f = _degrees("lat", lat), _degrees("lon", lon)
    for value in (*(props.get(k) for k in ("id", "kind", "name", "region", "phone", "language")), jurisdiction):
        if value is not None:
            _check_storable(value)
    return ResponderRecord(
        id=str(props.get("id") or "").strip(), kind=str(props.get("kind") or "").strip(),
        name=str(props.get("name") or "").strip(), lat=lat_f, lon=lon_f,
        region=str(props.get("region") or "").strip(), phone=(str(props.get("phone")).strip() or None)
        if props.get("phone") else None, jurisdiction=jurisdiction, on_duty=_bool(props.get("on_duty")),
        language=str(props.get("language") or "ru").strip())


def _header(line: str, separator: str) -> list[str]:
    return [c.strip().lower() for c in next(csv.reader([line], delimiter=separator), [])]


def separator_of(text: str) -> str:
    """The separator whose header line names the most required columns (a comma when none does)."""
    first = text.lstrip().split("\n", 1)[0]
    return max(SEPARATORS, key=lambda sep: sum(c in REQUIRED_COLUMNS for c in _header(first, sep)))


def parse_csv(text: str) -> list[ResponderRecord]:
    separator = separator_of(text)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=separator)
    try:
        reader.fieldnames = [c.strip().lower() for c in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in reader.fieldnames]
        if missing:
            raise FileError([f"missing columns: {', '.join(missing)} (the first line must name the columns "
                             f"id,kind,name,lat,lon,region and optionally phone,jurisdiction,on_duty,language, "
                             f"separated by commas or semicolons; `alertd responders import --help` describes them)"])
        records, problems = [], []
        for line, row in enumerate(reader, start=2):
            try:
                records.append(_record(row, row.get("lat"), row.get("lon"), row.get("jurisdiction") or None))
            except Invalid as exc:
                problems.append(f"line {line}: {exc.message}")
    except csv.Error as exc:
        raise FileError([f"line {reader.line_num}: not CSV ({exc})"]) from None
    if problems:
        raise FileError(problems)
    return records


def parse_geojson(text: str) -> list[ResponderRecord]:
    try:
        doc = validate.document(text, "file")
    except validate.Malformed as exc:
        raise FileError([exc.message]) from None
    features = doc.get("features") if isinstance(doc, dict) and doc.get("type") == "FeatureCollection" else None
    if not isinstance(features, list):
        raise FileError(["expected a GeoJSON FeatureCollection"])
    records, problems = [], []
    for i, feature in enumerate(features):
        try:
            geometry = feature.get("geometry") if isinstance(feature, dict) else None
            if not isinstance(geometry, dict) or geometry.get("type") != "Point":
                raise Invalid("geometry must be a Point")
            coordinates = geometry.get("coordinates")
            if not isinstance(coordinates, list) or len(coordinates) < 2:
                raise Invalid("a Point has [lon, lat] coordinates")
            lon, lat = coordinates[:2]
            if not all(isinstance(c, int | float) and not isinstance(c, bool) for c in (lon, lat)):
                raise Invalid("lat and lon must be numbers")
            props = feature.get("properties") or {}
            if not isinstance(props, dict):
                raise Invalid("properties must be an object")
            props = dict(props)
            area = props.pop("jurisdiction", None)
            if area is not None and (not isinstance(area, dict) or area.get("type") not in ("Polygon", "MultiPolygon")):
                raise Invalid("jurisdiction must be a Polygon or MultiPolygon geometry")
            records.append(_record(props, lat, lon, json.dumps(area) if area else None))
        except Invalid as exc:
            problems.append(f"feature {i}: {exc.message}")
    if problems:
        raise FileError(problems)
    return records


def _text(path: Path) -> str:
    """The file as text, or a FileError saying what it is instead and what to do."""
    data = path.read_bytes()
    for magic, what in _WORKBOOK_MAGIC.items():
        if data.startswith(magic):
            raise FileError([f"{path.name} is {what}, not CSV or GeoJSON: {SAVE_AS_CSV}"])
    if path.suffix.lower() in (".xlsx", ".xls", ".ods", ".numbers"):
        raise FileError([f"{path.name}: {path.suffix} files are not read, only CSV or GeoJSON: {SAVE_AS_CSV}"])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileError([f"{path.name} is not UTF-8 text (byte {exc.start}): {SAVE_AS_CSV}"]) from None


def read(path: Path) -> list[ResponderRecord]:
    text = _text(path)
    if path.suffix.lower() in (".json", ".geojson") or text.lstrip().startswith("{"):
        records = parse_geojson(text)
    else:
        records = parse_csv(text)
    ids = [r.id for r in records]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise FileError([f"duplicate id {d}" for d in dupes])
    return records
