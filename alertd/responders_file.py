"""Read responder directories: CSV (id,kind,name,lat,lon,phone,region) or GeoJSON Point features."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from alertd.core.model import Invalid
from alertd.service.enrolment import ResponderRecord

REQUIRED_COLUMNS = ("id", "kind", "name", "lat", "lon", "region")


class FileError(ValueError):
    """The file cannot be imported; `problems` lists every bad row so all can be fixed at once."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
        self.problems = problems


def _bool(value, default: bool = True) -> bool:
    if value in (None, ""):
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def _record(props: dict, lat, lon, jurisdiction: str | None) -> ResponderRecord:
    try:
        lat_f, lon_f = float(lat), float(lon)
    except (TypeError, ValueError):
        raise Invalid("lat and lon must be numbers") from None
    return ResponderRecord(
        id=str(props.get("id") or "").strip(), kind=str(props.get("kind") or "").strip(),
        name=str(props.get("name") or "").strip(), lat=lat_f, lon=lon_f,
        region=str(props.get("region") or "").strip(), phone=(str(props.get("phone")).strip() or None)
        if props.get("phone") else None, jurisdiction=jurisdiction, on_duty=_bool(props.get("on_duty")),
        language=str(props.get("language") or "ru").strip())


def parse_csv(text: str) -> list[ResponderRecord]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise FileError([f"missing columns: {', '.join(missing)}"])
    records, problems = [], []
    for line, row in enumerate(reader, start=2):
        try:
            records.append(_record(row, row.get("lat"), row.get("lon"), row.get("jurisdiction") or None))
        except Invalid as exc:
            problems.append(f"line {line}: {exc.message}")
    if problems:
        raise FileError(problems)
    return records


def parse_geojson(text: str) -> list[ResponderRecord]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileError([f"not valid JSON: {exc}"]) from None
    features = doc.get("features") if isinstance(doc, dict) and doc.get("type") == "FeatureCollection" else None
    if not isinstance(features, list):
        raise FileError(["expected a GeoJSON FeatureCollection"])
    records, problems = [], []
    for i, feature in enumerate(features):
        try:
            geometry = (feature or {}).get("geometry") or {}
            if geometry.get("type") != "Point":
                raise Invalid("geometry must be a Point")
            lon, lat = (geometry.get("coordinates") or [None, None])[:2]
            props = dict(feature.get("properties") or {})
            area = props.pop("jurisdiction", None)
            if area is not None and (not isinstance(area, dict) or area.get("type") not in ("Polygon", "MultiPolygon")):
                raise Invalid("jurisdiction must be a Polygon or MultiPolygon geometry")
            records.append(_record(props, lat, lon, json.dumps(area) if area else None))
        except Invalid as exc:
            problems.append(f"feature {i}: {exc.message}")
    if problems:
        raise FileError(problems)
    return records


def read(path: Path) -> list[ResponderRecord]:
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() in (".json", ".geojson") or text.lstrip().startswith("{"):
        records = parse_geojson(text)
    else:
        records = parse_csv(text)
    ids = [r.id for r in records]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise FileError([f"duplicate id {d}" for d in dupes])
    return records
