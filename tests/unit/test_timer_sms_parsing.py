"""The SMS forms of timers: `<code phrase> <minutes>` and a message that is only a PIN (pure parsers)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from alertd.channels.sms.text import TIMER_MAX_MINUTES, contains_phrase, pin_only, timer_minutes
from alertd.service.people import normalise_phrase as norm

PHRASE = norm("Көк қызғалдақ")


def test_phrase_and_minutes_in_the_ways_people_type_them():
    for text in ("Көк қызғалдақ 45", "кок кызгалдак 45", "КӨК ҚЫЗҒАЛДАҚ, 45!", "  көк   қызғалдақ 45  "):
        assert timer_minutes(norm(text), PHRASE) == 45, text
    assert timer_minutes(norm("көк қызғалдақ 1440"), PHRASE) == TIMER_MAX_MINUTES


def test_anything_else_is_not_a_timer():
    for text in ("Көк қызғалдақ", "көк қызғалдақ 0", "көк қызғалдақ 1441", "көк 45", "help көк қызғалдақ 45",
                 "көк қызғалдақ 45 please", "көк қызғалдақ 4.5", "45", "көк қызғалдақ 45 45"):
        assert timer_minutes(norm(text), PHRASE) is None, text
    assert timer_minutes(norm("45"), "") is None  # no phrase: no timer by SMS


def test_pin_only():
    assert pin_only("1234") == "1234" and pin_only(" 98765 \n") == "98765"
    for text in ("123", "12 34", "1234!", "pin 1234", "١٢٣٤", "", "1234a"):
        assert pin_only(text) is None, text


@given(st.integers(1, TIMER_MAX_MINUTES), st.sampled_from([" ", ", ", " - ", "  ", ": "]), st.booleans())
def test_every_duration_in_range_reads_back_and_still_holds_the_phrase(minutes, sep, upper):
    text = f"Көк қызғалдақ{sep}{minutes}"
    text = text.upper() if upper else text
    assert timer_minutes(norm(text), PHRASE) == minutes
    # whoever reads the old rule still sees the phrase in it: nothing else changed for this message
    assert contains_phrase(norm(text), PHRASE)


@given(st.text(max_size=40))
def test_arbitrary_text_never_crashes_and_a_timer_is_always_phrase_plus_number(text):
    minutes = timer_minutes(norm(text), PHRASE)
    assert minutes is None or (1 <= minutes <= TIMER_MAX_MINUTES and contains_phrase(norm(text), PHRASE))
    pin = pin_only(text)
    assert pin is None or (pin.isascii() and pin.isdigit() and len(pin) >= 4)
