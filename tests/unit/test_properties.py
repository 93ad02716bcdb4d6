"""Property-based tests (hypothesis) of every parser of outside input: whatever arrives, each one answers a value
or its own refusal, never another exception; and what a well-behaved client writes, it reads back."""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from alertd import auth
from alertd.channels.buttons import protocol
from alertd.channels.sms import location as sms_location
from alertd.channels.sms import text as sms_text
from alertd.channels.units import protocol as unit_protocol
from alertd.core import validate
from alertd.core.model import KINDS, Location, Refused
from alertd.core.policy import CODE_ALPHABET, CODE_LENGTH
from alertd.core.validate import Malformed
from alertd.service import responders_file
from alertd.settings import Settings
from clients.button import protocol as firmware

settings.register_profile("alertd", max_examples=150, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("alertd")

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SECRET = "ab" * 32
LATS = st.floats(-90, 90, allow_nan=False)
LONS = st.floats(-180, 180, allow_nan=False)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


def _valid_location(found: Location | None) -> None:
    if found is None:
        return
    assert -90 <= found.lat <= 90 and -180 <= found.lon <= 180
    assert found.accuracy_m is None or 0 <= found.accuracy_m <= 1_000_000
    assert NOW - validate.MAX_BEHIND <= found.fix_time <= NOW + validate.MAX_AHEAD


# --- the shared layer ----------------------------------------------------------------------------------------

@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_a_json_document_is_a_value_or_malformed(raw):
    try:
        value = validate.document(raw)
    except Malformed as exc:
        assert exc.status == 400 and exc.message
        return
    json.dumps(value)  # what parsed is plain JSON again (no NaN)


@given(st.integers(1, 50_000))
def test_any_nesting_is_a_value_or_malformed(depth):
    raw = "[" * depth + "]" * depth
    if depth <= validate.MAX_DEPTH:
        assert validate.document(raw) is not None
    else:
        with pytest.raises(Malformed):
            validate.document(raw)


@given(JSON_VALUES, st.sampled_from([validate.Text(0, 10), validate.Number(-90, 90), validate.Integer(0, 10),
                                     validate.Timestamp(), validate.Choice(("a", "b")), validate.Boolean()]))
def test_every_field_answers_a_typed_value_or_malformed(value, kind):
    try:
        parsed = kind.parse(value, "f")
    except Malformed:
        return
    if isinstance(kind, validate.Text):
        assert validate.storable(parsed) and len(parsed) <= 10
    elif isinstance(kind, validate.Number):
        assert math.isfinite(parsed) and -90 <= parsed <= 90


OFFSETS = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))


@given(st.datetimes(timezones=OFFSETS), st.sampled_from(["T", "t", " "]))
def test_an_rfc3339_time_reads_back_as_the_same_instant(when, separator):
    text = when.isoformat(separator)
    parsed = validate.Timestamp().parse(text, "t")
    try:
        expected = when.astimezone(UTC)
    except OverflowError:
        assert parsed is validate.OUT_OF_RANGE
        return
    assert parsed == expected


@given(st.datetimes(timezones=st.just(UTC)) | st.none())
def test_the_clock_rule_keeps_a_believable_time_and_replaces_any_other(claimed):
    kept = validate.believed(claimed, NOW)
    assert NOW - validate.MAX_BEHIND <= kept <= NOW + validate.MAX_AHEAD
    assert kept == claimed or kept == NOW


# --- SMS text and AML ----------------------------------------------------------------------------------------

@given(st.text(max_size=400))
def test_sms_text_readers_never_fail(text):
    code = sms_text.parse_ack(text)
    assert code is None or (len(code) == CODE_LENGTH and set(code) <= set(CODE_ALPHABET))
    encoding, parts = sms_text.segments(text)
    assert encoding in ("gsm7", "ucs2") and parts >= 1
    assert sms_text.fold(sms_text.fold(text)) == sms_text.fold(text)
    sms_text.contains_phrase(text, text[:5])
    found = sms_location.locate_text(text, NOW)
    _valid_location(found.location)


@given(st.sampled_from(CODE_ALPHABET).flatmap(lambda _: st.text(CODE_ALPHABET, min_size=CODE_LENGTH,
                                                                 max_size=CODE_LENGTH)),
       st.sampled_from(["", "OK ", "ok ", "ДА ", "ИӘ "]), st.sampled_from(["", ".", " !"]))
def test_a_responder_reply_with_a_code_reads_back(code, prefix, suffix):
    assert sms_text.parse_ack(f"{prefix}{code}{suffix}") == code


@given(LATS, LONS, st.floats(0, 10_000, allow_nan=False) | st.none(),
       st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)) | st.none())
def test_an_aml_message_reads_back(lat, lon, radius, top):
    assume(not (round(lat, 5) == 0 and round(lon, 5) == 0))
    fields = [f"lt={lat:+.5f}", f"lg={lon:+.5f}"]
    if radius is not None:
        fields.append(f"rd={radius:.0f}")
    if top is not None:
        fields.append(f"top={top:%Y%m%d%H%M%S}")
    text = 'A"ML=1;' + ";".join(fields) + ";"
    found = sms_location.parse_aml(text, NOW)
    assert found is not None and found.aml and found.location is not None
    assert found.location.lat == pytest.approx(lat, abs=1e-5) and found.location.lon == pytest.approx(lon, abs=1e-5)
    _valid_location(found.location)


@given(st.text(max_size=200))
def test_any_text_after_an_aml_head_is_aml_with_or_without_a_location(rest):
    found = sms_location.parse_aml('A"ML=1;' + rest, NOW)
    assert found is not None and found.aml
    _valid_location(found.location)


# --- coordinates and maps links ------------------------------------------------------------------------------

def _pair(lat, lon, decimals=5):
    return f"{lat:.{decimals}f}", f"{lon:.{decimals}f}"


@given(LATS, LONS, st.sampled_from(["{a}, {b}", "{a} {b}", "lat {a} lon {b}", "{a};{b}"]))
def test_typed_coordinates_read_back(lat, lon, template):
    a, b = _pair(lat, lon)
    assume(float(a) != 0 or float(b) != 0)
    found = sms_location.parse_coordinates("help " + template.format(a=a, b=b) + " please", NOW)
    assert found is not None
    assert (found.location.lat, found.location.lon) == (float(a), float(b))


@given(LATS, LONS, st.sampled_from([
    "https://maps.google.com/?q={a},{b}", "https://www.google.com/maps/@{a},{b},17z",
    "https://www.openstreetmap.org/?mlat={a}&mlon={b}", "https://www.openstreetmap.org/#map=17/{a}/{b}",
    "https://maps.apple.com/?ll={a},{b}", "https://yandex.ru/maps/?pt={b},{a}", "geo:{a},{b}",
    "geo:0,0?q={a},{b}(here)"]))
def test_maps_links_read_back(lat, lon, template):
    a, b = _pair(lat, lon)
    assume(float(a) != 0 or float(b) != 0)
    found = sms_location.locate_text("I am here " + template.format(a=a, b=b), NOW)
    assert found.location is not None, template
    assert (found.location.lat, found.location.lon) == (float(a), float(b))


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=120))
def test_any_url_is_a_place_or_nothing(tail):
    for head in ("https://maps.google.com/?q=", "https://www.openstreetmap.org/#map=", "geo:",
                 "https://yandex.ru/maps/?ll=", "https://maps.apple.com/?ll="):
        found = sms_location.parse_map_link(head + tail, NOW)
        assert found is None or found.location is not None
        _valid_location(found.location if found else None)


# --- MQTT payloads -------------------------------------------------------------------------------------------

@given(st.binary(max_size=300), st.sampled_from(["press", "heartbeat"]))
def test_any_payload_is_a_message_or_refused(payload, event):
    try:
        message = protocol.parse_button("B-1", event, payload)
    except Refused as refused:
        assert refused.kind == "malformed_payload"
        return
    assert message.seq >= 1 and len(message.mac) == 64


@given(st.dictionaries(st.sampled_from(["seq", "ts", "mac", "bat", "loc", "cell", "x"]), JSON_VALUES),
       st.sampled_from(["press", "heartbeat"]))
def test_any_json_object_is_a_message_or_refused(body, event):
    try:
        protocol.parse_button("B-1", event, json.dumps(body).encode())
    except Refused as refused:
        assert refused.kind == "malformed_payload"


@given(st.integers(1, 2**53), st.integers(0, 2**40), st.floats(0, 1) | st.none(),
       st.tuples(LATS, LONS, st.floats(0, 10_000)) | st.none(),
       st.tuples(st.integers(0, 999), st.integers(0, 999), st.integers(0, 2**32), st.integers(0, 2**40)) | st.none())
def test_what_the_firmware_sends_reads_back_and_authenticates(seq, ts, bat, loc, cell):
    _topic, payload = firmware.message("B-1", SECRET, "press", seq, ts, bat=bat, loc=loc, cell=cell)
    message = protocol.parse_button("B-1", "press", payload)
    assert (message.seq, message.ts, message.gps, message.cell, message.unusable) == (seq, ts, loc, cell, ())
    assert protocol.authentic(message, SECRET)


@given(st.integers(1, 2**53), st.integers(0, 2**40), JSON_VALUES, JSON_VALUES, JSON_VALUES)
def test_an_authentic_press_is_never_refused_over_an_auxiliary_field(seq, ts, bat, loc, cell):
    _topic, payload = firmware.message("B-1", SECRET, "press", seq, ts)
    body = {**json.loads(payload), "bat": bat, "loc": loc, "cell": cell}
    message = protocol.parse_button("B-1", "press", json.dumps(body).encode())
    assert protocol.authentic(message, SECRET)
    assert set(message.unusable) <= {"bat", "loc", "cell"}


@given(st.binary(max_size=200))
def test_unit_payloads_are_read_or_refused(payload):
    for parse in (unit_protocol.parse_unit_location, unit_protocol.parse_unit_ack):
        try:
            parse(payload)
        except Refused as refused:
            assert refused.kind == "malformed_payload"


# --- responder directory import ------------------------------------------------------------------------------

NAMES = st.text(st.characters(codec="utf-8", exclude_characters="\x00\r\n"), min_size=1, max_size=20).map(
    str.strip).filter(bool)
RECORDS = st.fixed_dictionaries({
    "id": st.text("abcdefgh0123456789-", min_size=1, max_size=12), "kind": st.sampled_from(KINDS),
    "name": NAMES, "lat": LATS, "lon": LONS, "region": NAMES,
    "phone": st.from_regex(r"\+7701[0-9]{7}", fullmatch=True) | st.none()})


@given(st.lists(RECORDS, min_size=1, max_size=5))
def test_a_directory_reads_back_from_csv_and_geojson(rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["id", "kind", "name", "lat", "lon", "phone", "region"])
    writer.writeheader()
    writer.writerows([{**r, "lat": repr(r["lat"]), "lon": repr(r["lon"]), "phone": r["phone"] or ""} for r in rows])
    geojson = json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [r["lon"], r["lat"]]},
         "properties": {k: v for k, v in r.items() if k not in ("lat", "lon")}} for r in rows]})
    for records in (responders_file.parse_csv(out.getvalue()), responders_file.parse_geojson(geojson)):
        assert [(r.id, r.kind, r.name, r.lat, r.lon, r.region, r.phone) for r in records] == \
               [(r["id"], r["kind"], r["name"], r["lat"], r["lon"], r["region"], r["phone"]) for r in rows]


@given(st.text(max_size=400))
def test_any_csv_is_records_or_a_file_error(text):
    try:
        records = responders_file.parse_csv("id,kind,name,lat,lon,phone,region\n" + text)
    except responders_file.FileError as exc:
        assert exc.problems or exc.message
        return
    for r in records:
        assert validate.storable(r.id + r.name + r.region) and -90 <= r.lat <= 90


@given(JSON_VALUES | st.fixed_dictionaries({"type": st.just("FeatureCollection"), "features": st.lists(
    JSON_VALUES | st.fixed_dictionaries({"geometry": JSON_VALUES, "properties": JSON_VALUES}), max_size=3)}))
def test_any_json_is_records_or_a_file_error(doc):
    try:
        responders_file.parse_geojson(json.dumps(doc))
    except responders_file.FileError as exc:
        assert exc.problems or exc.message


# --- JWT claims ----------------------------------------------------------------------------------------------

SETTINGS = Settings(database_url="postgresql://unused/x", jwt_secret="test-secret-" + "x" * 40)
CLAIMS = st.fixed_dictionaries({}, optional={
    "iss": JSON_VALUES | st.just(SETTINGS.jwt_issuer), "aud": JSON_VALUES | st.just(SETTINGS.jwt_audience),
    "sub": JSON_VALUES, "role": JSON_VALUES | st.sampled_from(auth.ROLES), "exp": JSON_VALUES,
    "iat": JSON_VALUES, "nbf": JSON_VALUES, "responder_id": JSON_VALUES, "person_id": JSON_VALUES})


def _signed(claims: dict) -> str:
    """A correctly signed HS256 token of any claims (pyjwt's encode refuses some, a forger need not)."""
    def part(doc) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}"
    tag = hmac.new(SETTINGS.jwt_secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(tag).rstrip(b'=').decode()}"


@given(CLAIMS)
def test_any_signed_claims_are_a_principal_or_a_token_error(claims):
    token = _signed(claims)
    try:
        auth.verify(SETTINGS, token, NOW)
    except auth.TokenError:
        pass


@given(st.text(max_size=300))
def test_any_bearer_string_is_a_principal_or_a_token_error(token):
    with pytest.raises(auth.TokenError):
        auth.verify(SETTINGS, token, NOW)


@given(st.sampled_from(auth.ROLES), st.text("abc-123", min_size=1, max_size=20), st.integers(1, 10**6))
def test_an_issued_token_reads_back_until_it_expires(role, sub, ttl):
    token = auth.issue(SETTINGS, role=role, sub=sub, ttl_s=ttl, now=NOW, responder_id="pol-1", person_id="P-1",
                       device_id="D-1")
    who = auth.verify(SETTINGS, token, NOW + timedelta(seconds=ttl - 1))
    assert (who.role, who.sub) == (role, sub)
    if role != "device":
        with pytest.raises(auth.TokenError):
            auth.verify(SETTINGS, token, NOW + timedelta(seconds=ttl))
