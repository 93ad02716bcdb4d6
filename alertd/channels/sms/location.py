"""Find a location in an SMS body: an AML message, a maps link, a geo: URI, or coordinates typed in the text.

Pure functions, no I/O. `locate_text` tries them best first and says which form it found, so the channel can
tell an AML message (a phone's emergency location) from free text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, unquote_plus, urlsplit

from alertd.core.model import Invalid, Location
from alertd.core.validate import believed

METRES_PER_DEGREE = 111_320.0
MIN_TEXT_ACCURACY_M = 30.0  # a typed or linked coordinate is never better than a phone's fix


@dataclass(frozen=True)
class SmsLocation:
    """What an SMS body says about where she is. `aml` is True for an AML message even without a position."""

    location: Location | None
    form: str | None = None  # aml, google, osm, apple, yandex, geo, text
    aml: bool = False
    flags: tuple[str, ...] = ()


def locate_text(text: str, now: datetime) -> SmsLocation:
    """The best location an SMS body holds: AML first, then a maps link or geo: URI, then typed coordinates."""
    aml = parse_aml(text, now)
    if aml is not None:
        return aml
    for url in _URL.findall(text):
        found = parse_map_link(url.rstrip(".,;)!"), now)
        if found is not None:
            return found
    found = parse_coordinates(_URL.sub(" ", text), now)
    return found if found is not None else SmsLocation(None)


# --- AML (Advanced Mobile Location) -------------------------------------------------------------------------

_AML_HEAD = re.compile(r'^\s*A["“”]ML=(\d+)\s*;', re.IGNORECASE)


def parse_aml(text: str, now: datetime) -> SmsLocation | None:
    """An AML SMS (`A"ML=1;lt=…;lg=…;rd=…;top=…;…;ml=…`), or None when the text is not AML at all.

    v1 carries lt/lg/rd; v2 carries `lo=lat,lon[,radius]`. A wrong `ml` (message length) is tolerated and flagged:
    some handsets count differently, and a position is worth more than a checksum. A malformed position gives an
    AML result without a location (still an AML message, flagged `aml_malformed`).
    """
    head = _AML_HEAD.match(text)
    if head is None:
        return None
    fields: dict[str, str] = {}
    for part in text.strip().split(";")[1:]:
        key, sep, value = part.partition("=")
        if sep:
            fields[key.strip().lower()] = value.strip()
    flags = []
    declared = fields.get("ml")
    if declared is not None and not (declared.isdigit() and int(declared) in (len(text), len(text.strip()))):
        flags.append("aml_length_mismatch")
    if fields.get("pm", "").upper() == "N":
        return SmsLocation(None, "aml", aml=True, flags=(*flags, "aml_no_position"))
    try:
        if "lo" in fields:
            parts = [p.strip() for p in fields["lo"].split(",")]
            lat, lon = _float(parts[0]), _float(parts[1])
            radius = _float(parts[2]) if len(parts) > 2 and parts[2] else None
        else:
            lat, lon = _float(fields["lt"]), _float(fields["lg"])
            radius = _float(fields["rd"]) if fields.get("rd") else None
        location = Location(lat=lat, lon=lon, accuracy_m=radius, source="aml",
                            fix_time=_aml_time(fields.get("top"), now))
    except (KeyError, IndexError, ValueError, Invalid):
        return SmsLocation(None, "aml", aml=True, flags=(*flags, "aml_malformed"))
    if lat == 0.0 and lon == 0.0:
        return SmsLocation(None, "aml", aml=True, flags=(*flags, "aml_malformed"))
    return SmsLocation(location, "aml", aml=True, flags=tuple(flags))


def _float(value: str) -> float:
    result = float(value.replace("−", "-"))
    if result != result or result in (float("inf"), float("-inf")):
        raise ValueError("not a finite number")
    return result


def _aml_time(top: str | None, now: datetime) -> datetime:
    """AML's time of positioning (YYYYMMDDhhmmss, UTC); the receive time when missing, malformed or outside the
    clock rule's window (validate.believed)."""
    if not top:
        return now
    try:
        when = datetime.strptime(top.strip(), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return now
    return believed(when, now)


# --- maps links and geo: URIs -------------------------------------------------------------------------------

_URL = re.compile(r"(?:https?://|geo:)[^\s<>\"']+", re.IGNORECASE)
_PAIR = re.compile(r"([-+]?\d{1,3}(?:\.\d+)?)\s*,\s*([-+]?\d{1,3}(?:\.\d+)?)")
_AT = re.compile(r"@([-+]?\d{1,3}\.\d+),([-+]?\d{1,3}\.\d+)")


def parse_map_link(url: str, now: datetime) -> SmsLocation | None:
    """Coordinates from a Google, OpenStreetMap, Apple or Yandex maps link, or a geo: URI (RFC 5870)."""
    if url.lower().startswith("geo:"):
        return _geo_uri(url, now)
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    query = {k.lower(): v[0] for k, v in parse_qs(parts.query).items()}
    if "google." in host or host.startswith("goo.gl"):
        pair = _first_pair([query.get(k) for k in ("q", "query", "ll", "center", "destination", "daddr")]
                           + [unquote_plus(parts.path)], at_sign=True)
        return _linked(pair, "google", now)
    if host.endswith("openstreetmap.org") or host.endswith("osm.org"):
        if "mlat" in query and "mlon" in query:
            return _linked((query["mlat"], query["mlon"]), "osm", now)
        fragment = dict(p.partition("=")[::2] for p in parts.fragment.split("&"))
        pieces = fragment.get("map", "").split("/")
        return _linked((pieces[1], pieces[2]) if len(pieces) == 3 else None, "osm", now)
    if host.endswith("maps.apple.com"):
        pair = _first_pair([query.get(k) for k in ("ll", "coordinate", "daddr", "q", "sll")])
        return _linked(pair, "apple", now)
    if host.startswith("yandex.") or ".yandex." in host or host.startswith("maps.yandex"):
        # Yandex writes lon,lat in pt/ll/whatshere; `text` is what the user typed, conventionally lat,lon.
        for key in ("pt", "whatshere[point]", "ll"):
            if key in query:
                pair = _first_pair([query[key].split("~")[0]])
                return _linked((pair[1], pair[0]) if pair else None, "yandex", now)
        return _linked(_first_pair([query.get("text")]), "yandex", now)
    return None


def _first_pair(values: list[str | None], at_sign: bool = False) -> tuple[str, str] | None:
    for value in values:
        if not value:
            continue
        value = unquote_plus(value)
        if at_sign and (m := _AT.search(value)):
            return m.group(1), m.group(2)
        m = _PAIR.search(value.replace("loc:", "").replace(" ", ","))
        if m:
            return m.group(1), m.group(2)
    return None


def _linked(pair: tuple[str, str] | None, form: str, now: datetime,
            accuracy: float | None = None) -> SmsLocation | None:
    if pair is None:
        return None
    try:
        lat, lon = _float(pair[0]), _float(pair[1])
        if lat == 0.0 and lon == 0.0:
            return None
        acc = accuracy if accuracy is not None else _precision_m(min(_decimals(pair[0]), _decimals(pair[1])))
        return SmsLocation(Location(lat, lon, acc, "sms_text", now), form)
    except (ValueError, Invalid):
        return None


def _geo_uri(uri: str, now: datetime) -> SmsLocation | None:
    body, _, query = uri[4:].partition("?")
    coords, *params = body.split(";")
    q = parse_qs(query).get("q", [""])[0]
    pair = _first_pair([coords])
    if pair is None or (pair[0].strip("+-") in ("0", "0.0") and pair[1].strip("+-") in ("0", "0.0")):
        pair = _first_pair([q])  # Android's geo:0,0?q=lat,lon(label)
    accuracy = None
    for p in params:
        key, _, value = p.partition("=")
        if key.lower() == "u":
            try:
                accuracy = max(_float(value), 0.0)
            except ValueError:
                pass
    return _linked(pair, "geo", now, accuracy)


def _decimals(number: str) -> int:
    _, _, frac = number.replace(",", ".").partition(".")
    return len(frac)


def _precision_m(decimals: int) -> float:
    """How far a coordinate rounded to this many decimals may be off (half a unit in the last place)."""
    return max(MIN_TEXT_ACCURACY_M, float(round(METRES_PER_DEGREE * 10.0 ** -decimals / 2)))


# --- coordinates typed in the text --------------------------------------------------------------------------

# One coordinate: optional hemisphere before, a signed decimal (dot or comma) or degrees-minutes-seconds,
# optional degree sign, optional hemisphere after (Latin letters or Russian/Kazakh abbreviations).
_HEMI = r"[NSEWnsew]|с\.?\s?ш\.?|ю\.?\s?ш\.?|в\.?\s?д\.?|з\.?\s?д\.?|с\.?\s?е\.?|ш\.?\s?б\.?"
_COORD = re.compile(
    rf"""(?<![\w.])
    (?:(?P<pre>[NSEWnsew])\s*)?
    (?P<sign>[-+−])?
    (?P<deg>\d{{1,3}})
    (?:(?P<frac>[.,]\d{{1,8}})
      |\s*°\s*(?P<min>\d{{1,2}}(?:[.,]\d+)?)\s*['′’]\s*(?:(?P<sec>\d{{1,2}}(?:[.,]\d+)?)\s*(?:"|″|''|”))?)?
    (?!\d)(?!\.\d)
    \s*(?P<degsign>°)?
    (?:\s*(?P<post>{_HEMI})(?!\w))?
    """,
    re.VERBOSE,
)
# What may stand between the two numbers of a pair: separators and a longitude label.
_GAP = re.compile(r"^[\s,;/:]*(?:(?:lon|lng|long|longitude|долгота|долг|бойлық)[\s.:=]*)?$", re.IGNORECASE)
_LAT_HEMI, _LON_HEMI = {"N": 1, "S": -1}, {"E": 1, "W": -1}
_HEMI_LETTER = {"СШ": "N", "ЮШ": "S", "ВД": "E", "ЗД": "W", "СЕ": "N", "ШБ": "E"}


@dataclass(frozen=True)
class _Coord:
    value: float
    hemi: str | None  # N, S, E, W
    decimals: int     # precision: decimal places, or 4 for D°M'S", 2 for D°M'
    marked: bool      # a degree sign, a hemisphere or minutes: clearly meant as a coordinate
    start: int
    end: int


def parse_coordinates(text: str, now: datetime) -> SmsLocation | None:
    """A latitude/longitude pair typed in the text, in the usual spellings; None when there is none.

    Accepted: `50.2839, 70.4562`, `50,2839 70,4562`, `N50.2839 E70.4562`, `50.2839° N, 70.4562° E`,
    `50°17'02"N 70°27'22"E`, `50.2839 с.ш. 70.4562 в.д.`, `lat 50.2839 lon 70.4562`. Bare numbers need three
    decimals each, so times, prices and dates are not read as places.
    """
    coords = [c for c in (_coord(m) for m in _COORD.finditer(text)) if c is not None]
    for a, b in zip(coords, coords[1:], strict=False):
        if not _GAP.match(text[a.end:b.start]):
            continue
        pair = _orient(a, b)
        if pair is None:
            continue
        lat, lon = pair
        if not a.marked and not b.marked and min(a.decimals, b.decimals) < 3:
            continue
        try:
            location = Location(lat, lon, _precision_m(min(a.decimals, b.decimals)), "sms_text", now)
        except Invalid:
            continue
        if lat == 0.0 and lon == 0.0:
            continue
        return SmsLocation(location, "text")
    return None


def _coord(m: re.Match) -> _Coord | None:
    deg = int(m["deg"])
    if m["min"] is not None:
        minutes = float(m["min"].replace(",", "."))
        seconds = float(m["sec"].replace(",", ".")) if m["sec"] else 0.0
        if minutes >= 60 or seconds >= 60:
            return None
        value, decimals = deg + minutes / 60 + seconds / 3600, 4 if m["sec"] else 2
    elif m["frac"] is not None:
        value, decimals = float(f"{deg}.{m['frac'][1:]}"), len(m["frac"]) - 1
    else:
        value, decimals = float(deg), 0
    hemi = _hemi(m["pre"]) or _hemi(m["post"])
    if m["pre"] and m["post"]:
        return None
    if m["sign"] in ("-", "−"):
        value = -value
    marked = bool(hemi or m["degsign"] or m["min"] is not None)
    if decimals == 0 and not marked:
        return None
    return _Coord(value, hemi, decimals, marked, m.start(), m.end())


def _hemi(token: str | None) -> str | None:
    if not token:
        return None
    letters = re.sub(r"[\s.]", "", token).upper()
    return _HEMI_LETTER.get(letters, letters if letters in "NSEW" else None)


def _orient(a: _Coord, b: _Coord) -> tuple[float, float] | None:
    """(lat, lon) from two coordinates, using hemispheres when given, else the usual lat-then-lon order."""
    if a.hemi in _LON_HEMI or b.hemi in _LAT_HEMI:
        if (a.hemi and a.hemi not in _LON_HEMI) or (b.hemi and b.hemi not in _LAT_HEMI):
            return None
        a, b = b, a
    elif (a.hemi and a.hemi not in _LAT_HEMI) or (b.hemi and b.hemi not in _LON_HEMI):
        return None
    lat = a.value * _LAT_HEMI.get(a.hemi or "N", 1)
    lon = b.value * _LON_HEMI.get(b.hemi or "E", 1)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat, lon
