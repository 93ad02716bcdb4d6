"""Pure SMS text handling: locations in every accepted form, code phrases, acknowledgements, templates, segments."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from alertd.channels.sms.location import locate_text, parse_aml, parse_coordinates, parse_map_link
from alertd.channels.sms.templates import LANGUAGES, TEMPLATES, render
from alertd.channels.sms.text import contains_phrase, parse_ack, segments
from alertd.service.people import normalise_phrase

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LAT, LON = 50.2839, 70.4562


def _aml(body: str) -> str:
    """An AML body with a correct ml= (the length of the whole message, ml field included)."""
    for digits in (2, 3):
        candidate = f"{body};ml={'0' * digits}"
        text = f"{body};ml={len(candidate)}"
        if len(text) == len(candidate):
            return text
    raise AssertionError("unreachable")


AML_V1 = ('A"ML=1;lt=+50.28390;lg=+070.45620;rd=50;top=20261126115930;lc=68;pm=G;si=401011234567890;'
          'ei=3569870123456789;mcc=401;mnc=01')


def test_aml_v1_with_correct_length():
    found = locate_text(_aml(AML_V1), NOW)
    assert found.aml and found.form == "aml" and found.flags == ()
    loc = found.location
    assert (loc.lat, loc.lon, loc.accuracy_m, loc.source) == (LAT, LON, 50.0, "aml")
    assert loc.fix_time == datetime(2026, 11, 26, 11, 59, 30, tzinfo=UTC)


def test_aml_wrong_length_is_tolerated_and_flagged():
    found = locate_text(AML_V1 + ";ml=12", NOW)
    assert found.location is not None and found.location.lat == LAT
    assert found.flags == ("aml_length_mismatch",)


def test_aml_v2_lo_field():
    found = parse_aml('A"ML=2;lo=50.2839,70.4562,35;top=20261126115930;pm=W', NOW)
    assert (found.location.lat, found.location.lon, found.location.accuracy_m) == (LAT, LON, 35.0)


@pytest.mark.parametrize("body, flag", [
    ('A"ML=1;lt=abc;lg=+070.45620;rd=50', "aml_malformed"),
    ('A"ML=1;lg=+070.45620;rd=50', "aml_malformed"),
    ('A"ML=1;lt=+95.0;lg=+070.45620;rd=50', "aml_malformed"),
    ('A"ML=1;lt=+50.1;lg=+070.4;rd=-5', "aml_malformed"),
    ('A"ML=2;lo=50.28;top=20261126115930', "aml_malformed"),
    ('A"ML=1;pm=N;si=401011234567890', "aml_no_position"),
])
def test_malformed_aml_is_still_aml_without_a_location(body, flag):
    found = locate_text(body, NOW)
    assert found.aml and found.location is None and flag in found.flags


def test_aml_time_in_the_future_or_garbled_falls_back_to_now():
    assert parse_aml('A"ML=1;lt=50.1;lg=70.1;rd=10;top=20301126115930', NOW).location.fix_time == NOW
    assert parse_aml('A"ML=1;lt=50.1;lg=70.1;rd=10;top=yesterday', NOW).location.fix_time == NOW


@pytest.mark.parametrize("text", [
    "help 50.2839, 70.4562",
    "50.2839,70.4562",
    "50,2839 70,4562",
    "50,2839; 70,4562",
    "N50.2839 E70.4562",
    "E70.4562 N50.2839",
    "50.2839N, 70.4562E",
    "50.2839° N, 70.4562° E",
    "50°17'02.0\"N 70°27'22.3\"E",
    "50.2839 с.ш. 70.4562 в.д.",
    "lat 50.2839 lon 70.4562",
    "мен осындамын 50.2839 70.4562 тез",
])
def test_typed_coordinates(text):
    found = locate_text(text, NOW)
    assert found.form == "text" and not found.aml
    assert found.location.lat == pytest.approx(LAT, abs=1e-4)
    assert found.location.lon == pytest.approx(LON, abs=1e-4)
    assert found.location.source == "sms_text" and found.location.accuracy_m >= 30


def test_southern_and_western_hemispheres():
    loc = parse_coordinates("S33.8688 W70.6693", NOW).location
    assert (loc.lat, loc.lon) == (-33.8688, -70.6693)
    loc = parse_coordinates("-33.8688, 151.2093", NOW).location
    assert (loc.lat, loc.lon) == (-33.8688, 151.2093)


@pytest.mark.parametrize("text", [
    "meet at 14.30, 15.45",            # times: too few decimals to be a place
    "on 12.11.2026 call me",           # a date
    "+77011234567",                    # a phone number
    "price 1200,50 tenge",
    "N50.2839 N70.4562",               # two latitudes
    "95.12345, 70.12345",              # latitude out of range
    "0.0000, 0.0000",                  # null island is a GPS failure, not a place
    "help me please",
    "",
])
def test_not_coordinates(text):
    assert locate_text(text, NOW).location is None


def test_precision_sets_accuracy():
    assert parse_coordinates("50.28 70.45°", NOW).location.accuracy_m == pytest.approx(557, abs=1)
    assert parse_coordinates("50.2839 70.4562", NOW).location.accuracy_m == 30.0


@pytest.mark.parametrize("url, form", [
    ("https://maps.google.com/?q=50.2839,70.4562", "google"),
    ("https://www.google.com/maps?q=50.2839,70.4562&z=17", "google"),
    ("https://www.google.com/maps/search/?api=1&query=50.2839%2C70.4562", "google"),
    ("https://www.google.com/maps/@50.2839,70.4562,15z", "google"),
    ("https://www.google.kz/maps/place/Foo/@50.2839,70.4562,17z/data=!3m1", "google"),
    ("https://www.openstreetmap.org/?mlat=50.2839&mlon=70.4562#map=15/50.0/70.0", "osm"),
    ("https://www.openstreetmap.org/#map=17/50.2839/70.4562", "osm"),
    ("https://maps.apple.com/?ll=50.2839,70.4562&q=Pin", "apple"),
    ("https://maps.apple.com/?daddr=50.2839,70.4562", "apple"),
    ("https://yandex.kz/maps/?pt=70.4562,50.2839&z=16&l=map", "yandex"),
    ("https://yandex.ru/maps/?ll=70.4562%2C50.2839&z=12", "yandex"),
    ("https://yandex.ru/maps/?whatshere%5Bpoint%5D=70.4562%2C50.2839&z=17", "yandex"),
    ("geo:50.2839,70.4562", "geo"),
    ("geo:50.2839,70.4562;u=35", "geo"),
    ("geo:0,0?q=50.2839,70.4562(Home)", "geo"),
])
def test_map_links(url, form):
    found = locate_text(f"I am here {url} please", NOW)
    assert found.form == form
    assert (found.location.lat, found.location.lon) == (LAT, LON)


def test_geo_uncertainty_is_the_accuracy():
    assert parse_map_link("geo:50.2839,70.4562;u=35", NOW).location.accuracy_m == 35.0


def test_links_without_coordinates_give_nothing():
    assert locate_text("https://goo.gl/maps/abc123 help", NOW).location is None
    assert locate_text("https://example.org/?q=50.2839,70.4562", NOW).location is None
    assert parse_map_link("https://www.openstreetmap.org/#map=17/x/y", NOW) is None


def test_aml_beats_coordinates_in_the_same_text():
    found = locate_text(_aml(AML_V1) + " 10.12345 20.12345", NOW)
    assert found.form == "aml"


@pytest.mark.parametrize("message, phrase, expected", [
    ("Мен ҮЙДЕМІН, көмек!", "үйдемін", True),
    ("мен уидемин", "үйдемін", True),          # typed on a Russian keyboard
    ("Ёлка", "елка", True),
    ("Синий тюльпан.", "синий тюльпан", True),
    ("Blue  Tulip!", "blue tulip", True),
    ("Café rouge", "cafe rouge", True),
    ("bluetulip", "blue tulip", False),
    ("tulips are blue", "blue tulip", False),
    ("hello", "", False),
])
def test_code_phrase(message, phrase, expected):
    assert contains_phrase(normalise_phrase(message), normalise_phrase(phrase)) is expected


@pytest.mark.parametrize("text, code", [
    ("7KX3QM", "7KX3QM"),
    ("ok 7kx3qm", "7KX3QM"),
    ("OK, 7KX3QM!", "7KX3QM"),
    ("ИӘ 7KX3QM", "7KX3QM"),
    ("Да 7KX3QM", "7KX3QM"),
    ("да 7КХ3QМ", "7KX3QM"),  # Cyrillic look-alikes typed on a Russian keyboard
    ("hello", None),
    ("7KX3QMM", None),
    ("OK", None),
    ("OK 7KX3Q0", None),      # 0 is not in the code alphabet
    ("please come 7KX3QM", None),
])
def test_ack_reply(text, code):
    assert parse_ack(text) == code


def test_segments():
    assert segments("hello") == ("gsm7", 1)
    assert segments("x" * 161) == ("gsm7", 2)
    assert segments("€" * 81) == ("gsm7", 2)  # extension characters count twice
    assert segments("я" * 70) == ("ucs2", 1)
    assert segments("я" * 71) == ("ucs2", 2)


WORST = {"code": "7KX3QM", "kind": "crisis_centre", "lat": -50.123, "lon": -170.456, "accuracy_m": 100000,
         "deadline": "2026-11-26T12:02:00+00:00", "priority": "high", "duress": True, "attempt": 9}


@pytest.mark.parametrize("template", sorted(TEMPLATES))
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_template_fits_two_segments_and_names_nobody(template, language):
    from zoneinfo import ZoneInfo

    text = render(template, WORST, language, ZoneInfo("Asia/Almaty"))  # the longest zone label: "(UTC+5)"
    assert segments(text)[1] <= 2
    assert "7KX3QM" in text or template == "ack_help"


def test_dispatch_text_has_code_place_accuracy_deadline_and_reply_instruction():
    payload = {**WORST, "lat": 50.284, "lon": 70.456, "accuracy_m": 50, "priority": "normal", "duress": False}
    en = render("dispatch", payload, "en")
    assert en == ("ALERT 7KX3QM crisis centre: maps.google.com/?q=50.284,70.456 +/-50m. "
                  "Reply 7KX3QM to acknowledge by 12:02 (UTC)")
    # responders read the deadline in their local time (Kazakhstan: UTC+5)
    from zoneinfo import ZoneInfo

    assert render("dispatch", payload, "en", ZoneInfo("Asia/Almaty")).endswith("by 17:02 (UTC+5)")
    assert "до 17:02 (UTC+5)" in render("dispatch", payload, "ru", ZoneInfo("Asia/Almaty"))
    assert "кризисный центр" in render("dispatch", payload, "ru")
    assert "дағдарыс орталығы" in render("dispatch", payload, "kk")
    assert render("dispatch", payload, "xx").startswith("ТРЕВОГА")  # unknown language: Russian


def test_validity_period_outside_twilios_range_is_refused():
    from alertd.settings import Settings, SettingsError

    good = Settings(jwt_secret="x" * 40)
    assert good.validate().sms_validity_s == 600
    with pytest.raises(SettingsError, match="ALERTD_SMS_VALIDITY_S"):
        good.replace(sms_validity_s=0).validate()
    env = Settings.from_env({"TWILIO_AUTH_TOKEN_SECONDARY": "next", "ALERTD_SMS_GATEWAY_PREFIXES": "+996"})
    assert (env.twilio_auth_token_secondary, env.sms_gateway_prefixes) == ("next", "+996")
    assert "next" not in repr(env)  # secrets print as ***, or not at all


def test_responder_phones_are_stored_as_twilio_sends_them():
    from alertd.core.model import Invalid
    from alertd.service.responders import ResponderRecord

    record = ResponderRecord(id="cc-9", kind="crisis_centre", name="c", lat=50.0, lon=70.0, region="north",
                             phone=" +7 701 000 00 01 ")
    assert record.phone == "+77010000001"
    with pytest.raises(Invalid, match=r"E\.164"):
        ResponderRecord(id="cc-9", kind="crisis_centre", name="c", lat=50.0, lon=70.0, region="north",
                        phone="8 701 000 00 01")
