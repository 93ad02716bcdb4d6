"""Dispatch codes: six characters a responder can read and type back, drawn uniformly."""

from __future__ import annotations

from collections import Counter

from alertd.core.policy import CODE_ALPHABET, CODE_LENGTH, new_code


def test_codes_use_the_readable_alphabet_and_reach_every_character_in_every_place():
    codes = [new_code() for _ in range(20000)]
    assert all(len(code) == CODE_LENGTH and set(code) <= set(CODE_ALPHABET) for code in codes)
    assert len(set(codes)) > 19900  # 27^6 = 387M codes: repeats among 20k draws are rare
    expected = len(codes) / len(CODE_ALPHABET)
    for place in range(CODE_LENGTH):
        seen = Counter(code[place] for code in codes)
        assert set(seen) == set(CODE_ALPHABET)
        assert all(0.8 * expected < n < 1.2 * expected for n in seen.values()), (place, seen)
