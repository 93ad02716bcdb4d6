"""Outside input, checked alike on every channel: typed fields that parse a value or raise `Malformed`.

The phone app, the console, the officer API, the SMS webhook and the MQTT payloads all read their input through
here, so one rule holds everywhere: a JSON document is UTF-8 and nested no deeper than MAX_DEPTH, a string holds
no NUL and no lone surrogate (PostgreSQL cannot store either), a number is finite and in its range (NaN, Infinity
and numbers of thousands of digits never are), a time is RFC 3339. Each field also describes itself as JSON Schema: /openapi.json is built from
the same objects, so the spec says exactly what the server accepts. Pure: no I/O.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from alertd.core.model import DomainError

MAX_DIGITS = 40  # digits in a JSON number: beyond any coordinate, seq or id; 5,000 digits is an attack
MAX_DEPTH = 32   # nesting of a JSON document; no request of the contract goes deeper than 4
# JSON Schema of "no NUL and no lone surrogate" (a lone surrogate cannot even be sent as UTF-8)
STORABLE = "^[^\\u0000]*$"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")

# The clock rule, one for every channel: a time a client claims (an alert's triggered_at, a fix's time, an AML
# message's time of positioning, a button's ts) is believed within this window around the service's clock.
MAX_AHEAD = timedelta(minutes=10)
MAX_BEHIND = timedelta(hours=24)


class Malformed(DomainError):
    """Input that does not fit the contract; `field` names where (`body`, `location.lat`, `Body`)."""

    status, code = 400, "malformed"

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name} {message}")
        self.field = field_name


# --- documents -----------------------------------------------------------------------------------------------

def _parse_int(digits: str) -> int | float:
    # An integer too long to be anything real parses as infinite, so every field's range check refuses it
    # (and an optional field, such as a button's battery, is left unusable instead of sinking the message).
    if len(digits.lstrip("-")) > MAX_DIGITS:
        return -math.inf if digits.startswith("-") else math.inf
    return int(digits)


def _parse_float(text: str) -> float:
    if len(text) > 2 * MAX_DIGITS:
        return math.inf
    return float(text)


def _constant(name: str) -> float:
    # NaN and Infinity are not JSON, but MicroPython's json writes them: they parse as floats that every
    # Number refuses, so only the field that holds one is unusable.
    return float(name)


def document(raw: bytes | str, name: str = "body") -> Any:
    """Parse one JSON document: UTF-8, nested no deeper than MAX_DEPTH; a number too long to be real (and NaN or
    Infinity) parses as a non-finite float, which every Number and Integer field refuses."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_constant)
    except UnicodeDecodeError:
        raise Malformed(name, "is not UTF-8") from None
    except RecursionError:
        raise Malformed(name, f"is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:  # json.JSONDecodeError, and what a decoder hook refuses
        raise Malformed(name, "is not valid JSON") from None
    if _depth(value) > MAX_DEPTH:
        raise Malformed(name, f"is nested deeper than {MAX_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    """How deeply a parsed document nests (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if level <= MAX_DEPTH:
            stack.extend((child, level + 1) for child in children)
    return deepest


def storable(value: str) -> bool:
    """Whether PostgreSQL can keep this string (in text or jsonb): no NUL, no lone surrogate."""
    return _UNSTORABLE.search(value) is None


def storable_text(value: str) -> str:
    """Free text kept as it came but for what PostgreSQL cannot store, which becomes U+FFFD (a survivor's SMS is
    never refused over a character)."""
    return _UNSTORABLE.sub("\ufffd", value)


def printable(value: str, limit: int = 200) -> str:
    """A string safe to record in a log or a security event whatever it holds (unstorable characters escaped)."""
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", value[:limit])


# --- fields --------------------------------------------------------------------------------------------------

class Field:
    """A kind of value: `parse` checks and converts it (or raises Malformed), `schema` describes it."""

    description: str | None = None

    def parse(self, value: Any, name: str) -> Any:
        raise NotImplementedError

    def json_schema(self) -> dict:
        raise NotImplementedError

    def schema(self) -> dict:
        out = self.json_schema()
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class Text(Field):
    """A string of min_len..max_len characters that PostgreSQL can store; optionally one of a pattern."""

    min_len: int = 0
    max_len: int = 1000
    pattern: str | None = None  # a regular expression the whole string must match (same in Python and JSON Schema)
    description: str | None = None

    def parse(self, value: Any, name: str) -> str:
        if not isinstance(value, str):
            raise Malformed(name, "must be a string")
        if not storable(value):
            raise Malformed(name, "must not contain NUL or unpaired surrogate characters")
        if not self.min_len <= len(value) <= self.max_len:
            raise Malformed(name, f"must be {self.min_len} to {self.max_len} characters long")
        if self.pattern is not None and re.fullmatch(self.pattern, value) is None:
            raise Malformed(name, f"must match {self.pattern}")
        return value

    def json_schema(self) -> dict:
        out = {"type": "string", "minLength": self.min_len, "maxLength": self.max_len}
        out["pattern"] = f"^(?:{self.pattern})$" if self.pattern is not None else STORABLE
        return out


@dataclass(frozen=True)
class Number(Field):
    """A finite JSON number (not a boolean) within [low, high]."""

    low: float
    high: float
    description: str | None = None

    def parse(self, value: Any, name: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                or not self.low <= value <= self.high:
            raise Malformed(name, f"must be a number in [{_num(self.low)}, {_num(self.high)}]")
        return float(value)

    def json_schema(self) -> dict:
        return {"type": "number", "minimum": self.low, "maximum": self.high}


@dataclass(frozen=True)
class Integer(Field):
    """A JSON integer within [low, high] (`5.0` is the integer 5, as JSON Schema has it)."""

    low: int
    high: int
    description: str | None = None

    def parse(self, value: Any, name: str) -> int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not self.low <= value <= self.high:
            raise Malformed(name, f"must be an integer in [{self.low}, {self.high}]")
        return value

    def json_schema(self) -> dict:
        return {"type": "integer", "minimum": self.low, "maximum": self.high}


@dataclass(frozen=True)
class Boolean(Field):
    description: str | None = None

    def parse(self, value: Any, name: str) -> bool:
        if not isinstance(value, bool):
            raise Malformed(name, "must be true or false")
        return value

    def json_schema(self) -> dict:
        return {"type": "boolean"}


@dataclass(frozen=True)
class Choice(Field):
    """One of a fixed set of strings."""

    options: tuple[str, ...]
    description: str | None = None

    def parse(self, value: Any, name: str) -> str:
        if not isinstance(value, str) or value not in self.options:
            raise Malformed(name, f"must be one of {', '.join(self.options)}")
        return value

    def json_schema(self) -> dict:
        return {"type": "string", "enum": list(self.options)}


@dataclass(frozen=True)
class Timestamp(Field):
    """An RFC 3339 date-time with its offset, as an aware datetime in UTC.

    A time outside what a datetime holds (`9999-12-31T23:59:59-10:00` is in the year 10000 in UTC) is not
    refused: it is simply outside the clock rule's window, and `believed` replaces it with the receive time.
    Such a time parses as `OUT_OF_RANGE`.
    """

    description: str | None = None

    def parse(self, value: Any, name: str) -> datetime:
        m = _RFC3339.match(value) if isinstance(value, str) else None
        if m is None:
            raise Malformed(name, "must be an RFC 3339 date-time with an offset (2026-11-26T12:00:00Z)")
        year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
        fraction, offset = m.group(7), m.group(8)
        try:
            tz = UTC if offset in ("Z", "z") else _offset(offset)
            micro = int((fraction or ".0")[1:7].ljust(6, "0"))
            # RFC 3339 allows a leap second (:60); it is the last moment of that minute
            when = datetime(year, month, day, hour, minute, min(second, 59), micro, tzinfo=tz)
        except ValueError:
            raise Malformed(name, "is not a real date and time") from None
        if second > 60:
            raise Malformed(name, "is not a real date and time")
        try:
            return when.astimezone(UTC)
        except OverflowError:
            return OUT_OF_RANGE

    def json_schema(self) -> dict:
        return {"type": "string", "format": "date-time"}


def _offset(text: str):
    from datetime import timezone

    sign = -1 if text[0] == "-" else 1
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > 23 or minutes > 59:
        raise ValueError("offset out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


# A parsed time no datetime in UTC can hold; outside every window, so `believed` never keeps it.
OUT_OF_RANGE = datetime.max.replace(tzinfo=UTC)


def believed(claimed: datetime | None, now: datetime) -> datetime:
    """The clock rule: a client's time is kept when within MAX_BEHIND before to MAX_AHEAD after now; otherwise
    (a phone whose clock is off, a fix dated in the year 3000 that would stay 'newest' forever) the receive
    time is used."""
    if claimed is None or claimed is OUT_OF_RANGE or not now - MAX_BEHIND <= claimed <= now + MAX_AHEAD:
        return now
    return claimed


@dataclass(frozen=True)
class Obj(Field):
    """A JSON object with named fields; an optional field missing or null parses as its default (None).
    Unknown fields are ignored (the contract lets fields be added)."""

    fields: Mapping[str, Field]
    required: tuple[str, ...] = ()
    description: str | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def parse(self, value: Any, name: str = "body") -> dict[str, Any]:
        if not isinstance(value, dict):
            raise Malformed(name, "must be a JSON object")
        out = {}
        for key, kind in self.fields.items():
            path = key if name == "body" else f"{name}.{key}"
            item = value.get(key)
            if item is None:
                if key in self.required:
                    raise Malformed(path, "is required")
                out[key] = self.defaults.get(key)
            else:
                out[key] = kind.parse(item, path)
        return out

    def json_schema(self) -> dict:
        props = {}
        for key, kind in self.fields.items():
            schema = kind.schema()
            props[key] = schema if key in self.required else {"anyOf": [schema, {"type": "null"}]}
        out: dict = {"type": "object", "properties": props}
        if self.required:
            out["required"] = list(self.required)
        return out


@dataclass(frozen=True)
class ListOf(Field):
    item: Field
    min_items: int = 0
    max_items: int = 100
    description: str | None = None

    def parse(self, value: Any, name: str) -> list:
        if not isinstance(value, list) or not self.min_items <= len(value) <= self.max_items:
            raise Malformed(name, f"must be a list of {self.min_items} to {self.max_items} items")
        return [self.item.parse(v, f"{name}[{i}]") for i, v in enumerate(value)]

    def json_schema(self) -> dict:
        return {"type": "array", "items": self.item.schema(), "minItems": self.min_items,
                "maxItems": self.max_items}


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def query(params: Mapping[str, str], fields: Mapping[str, Field]) -> dict[str, Any]:
    """Query parameters: each named one parsed by its field (absent: None), any other one refused, as is a
    parameter given twice (which of the two would count?)."""
    for key in params:
        if key not in fields:
            raise Malformed(printable(key, 40), "is not a parameter of this request")
    out = {}
    for key, kind in fields.items():
        values = params.getall(key, []) if hasattr(params, "getall") else [params[key]] if key in params else []
        if len(values) > 1:
            raise Malformed(key, "is given more than once")
        out[key] = kind.parse(values[0], key) if values else None
    return out


def form_text(form: Mapping[str, Any], key: str, kind: Text, *, required: bool = False) -> str | None:
    """A form field (SMS webhooks) through the same Text rules; a missing or empty optional field is None."""
    value = form.get(key)
    if value is None or value == "":
        if required:
            raise Malformed(key, "is required")
        return None
    return kind.parse(value, key)
