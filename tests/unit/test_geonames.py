"""The GeoNames dump parser: the sample file, odd lines with their numbers, and properties over generated lines."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alertd.core import geonames
from alertd.core.geonames import LineError, PlaceRecord, Tally, classes_option, format_line, local_names, parse_line

SAMPLE = next(p for p in Path(__file__).resolve().parents if p.name == "tests") / "data" / "geonames_sample.txt"


def test_the_sample_dump_keeps_populated_places_only():
    tally = Tally()
    with SAMPLE.open("rb") as lines:
        kept = list(geonames.read(lines, tally))
    assert [r.geonameid for r in kept] == [9100001, 9100004, 9100005, 9100007]
    assert (tally.lines, tally.kept, tally.left_out, tally.problems) == (7, 4, 3, [])
    karaozek, tasbulak, zhana, _ = kept
    assert (karaozek.name, karaozek.asciiname, karaozek.name_ru, karaozek.name_kk) == (
        "Qaraözek", "Karaozek", "Караозек", "Караөзек")
    assert (karaozek.feature_class, karaozek.feature_code, karaozek.country, karaozek.admin1) == ("P", "PPL", "KZ", "03")
    assert (karaozek.population, karaozek.modified) == (1240, date(2024, 3, 1))
    assert (tasbulak.name_ru, tasbulak.name_kk) == (None, None)  # empty alternatenames
    assert (zhana.name, zhana.asciiname, zhana.name_ru, zhana.name_kk) == ("Жаңа Жол", "Zhana Zhol", "Жана Жол", None)


def test_more_classes_on_request_and_never_a_ruin():
    tally = Tally()
    with SAMPLE.open("rb") as lines:
        codes = {r.feature_code for r in geonames.read(lines, tally, classes_option("p,s"))}
    assert codes == {"PPL", "PPLA2", "FRM"}  # the farm now; the stream (H) and the abandoned village (PPLQ) never
    with pytest.raises(ValueError, match="letters among ADHLPRSTUV"):
        classes_option("PX")


GOOD = format_line(PlaceRecord(1, "Aksu", "Aksu", None, None, "P", "PPL", "KZ", "03", 10, 50.1, 70.2, None))


def _lines(*texts: str) -> list[bytes]:
    return [t.encode() + b"\n" for t in texts]


def test_odd_lines_are_reported_with_their_numbers_and_reading_goes_on():
    cols = GOOD.split("\t")
    bad_lat = "\t".join([*cols[:4], "95.5", *cols[5:]])
    bad_id = "\t".join(["12a", *cols[1:]])
    no_name = "\t".join([cols[0], " ", *cols[2:]])
    bad_class = "\t".join([*cols[:6], "PX", *cols[7:]])
    bad_pop = "\t".join([*cols[:14], "-3", *cols[15:]])
    bad_date = "\t".join([*cols[:18], "01.03.2024"])
    lines = _lines(GOOD, "", bad_lat, "a,b,c", bad_id, no_name, bad_class, bad_pop, bad_date, GOOD)
    lines.insert(3, b"1\tQ\xe9\tQ\t\t1\t1\tP\tPPL\tKZ\t\t\t\t\t\t0\t\t\t\t\n")  # Latin-1, not UTF-8
    tally = Tally()
    assert len(list(geonames.read(lines, tally))) == 2
    assert tally.problems == [
        "line 3: latitude must be within [-90, 90], got '95.5'",
        "line 4: not UTF-8 (byte 0xe9 at column 4); GeoNames dumps are UTF-8",
        "line 5: expected 19 tab-separated columns, found 1 (is this a GeoNames dump? alternateNames and admin-code "
        "files have other columns)",
        "line 6: geonameid must be a whole number, got '12a'",
        "line 7: name is empty",
        "line 8: feature class must be one of A, D, H, L, P, R, S, T, U, V, got 'PX'",
        "line 9: population must not be negative, got -3",
        "line 10: modification date must be YYYY-MM-DD, got '01.03.2024'",
    ]


def test_a_byte_order_mark_and_windows_line_ends_are_read():
    tally = Tally()
    [record] = geonames.read([("\ufeff" + GOOD + "\r\n").encode()], tally)
    assert record.geonameid == 1 and record.modified is None and tally.problems == []


def test_only_the_first_fifty_problems_are_listed_and_the_rest_counted():
    tally = Tally()
    list(geonames.read(_lines(*["x"] * 60), tally))
    assert tally.bad_lines == 60 and len(tally.summary()) == 51
    assert tally.summary()[-1] == "... and 10 more bad lines"


def test_russian_and_kazakh_names_among_untagged_alternate_names():
    assert local_names("") == (None, None)
    assert local_names("Astana,Астана,Ақмола,Akmola,Акмола") == ("Астана", "Ақмола")
    assert local_names("Київ,Kyiv") == (None, None)  # Ukrainian і/ї: not Russian, not Kazakh
    assert local_names("北京,Пекин") == ("Пекин", None)
    assert local_names("Есиль,Есіл") == ("Есиль", "Есіл")  # і alone is Kazakh too


# ---- properties ----

names = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\t\n\r,\x85\u2028\u2029"),
                min_size=1, max_size=40).filter(lambda s: s.strip() == s and s)
records = st.builds(
    PlaceRecord,
    geonameid=st.integers(1, 2**53),
    name=names, asciiname=st.from_regex(r"[A-Za-z][A-Za-z '\-]{0,30}[a-z]", fullmatch=True),
    name_ru=st.none(), name_kk=st.none(),
    feature_class=st.just("P"), feature_code=st.sampled_from(["PPL", "PPLA", "PPLA2", "PPLC", "PPLX"]),
    country=st.sampled_from(["KZ", "RU", "KG", ""]), admin1=st.sampled_from(["03", "10", ""]),
    population=st.integers(0, 40_000_000),
    lat=st.floats(-90, 90).map(lambda v: round(v, 5)), lon=st.floats(-180, 180).map(lambda v: round(v, 5)),
    modified=st.none() | st.dates(date(1990, 1, 1), date(2100, 1, 1)),
)


@given(records)
def test_a_formatted_record_reads_back_the_same(record):
    assert parse_line(format_line(record)) == record


@given(records, st.sampled_from(["Караозек", "Қараөзек", ""]))
def test_alternate_names_give_the_local_names(record, alt):
    parsed = parse_line(format_line(record, alternatenames=f"Foo,{alt}" if alt else ""))
    assert (parsed.name_ru, parsed.name_kk) == {"Караозек": ("Караозек", None), "Қараөзек": (None, "Қараөзек"),
                                                "": (None, None)}[alt]


@given(st.text(max_size=300))
def test_any_text_is_a_place_nothing_or_a_line_error(text):
    """Whatever a line holds, the parser answers with a place, None (left out) or LineError: never anything else."""
    try:
        result = parse_line(text)
    except LineError as exc:
        assert str(exc)
    else:
        assert result is None or isinstance(result, PlaceRecord)


@given(st.lists(st.one_of(records.map(format_line), st.text(alphabet="\t abc123.-", max_size=60)), max_size=30))
def test_every_line_is_counted_once_and_problems_name_real_line_numbers(lines):
    tally = Tally()
    kept = list(geonames.read([line.encode() + b"\n" for line in lines], tally))
    assert len(kept) == tally.kept
    assert tally.kept + tally.left_out + tally.bad_lines == tally.lines
    assert tally.lines == sum(1 for line in lines if line.strip() and not line.startswith("#"))
    for problem in tally.problems:
        n = int(problem.split(":")[0].removeprefix("line "))
        assert 1 <= n <= len(lines) and lines[n - 1].strip()
