"""Properties of the AHV and ZEMIS identifiers: round trips, check digits, no crash on any text."""

from __future__ import annotations

import re

from hypothesis import assume, given
from hypothesis import strategies as st

from dossier_service.identifiers import format_ahv, is_valid_ahv, normalize_ahv, normalize_zemis
from search.query import detect_identifier

DIGITS = "0123456789"
AHV_FORMAT = re.compile(r"756\.\d{4}\.\d{4}\.\d{2}")
ZEMIS_SEPARATORS = st.sampled_from([".", "-", "/", " ", ""])


def ean13_check_digit(first12: str) -> str:
    """The check digit written out independently of the code under test (GS1 definition)."""
    odd = sum(int(c) for c in first12[0::2])
    even = sum(int(c) for c in first12[1::2])
    return str(-(odd + 3 * even) % 10)


@st.composite
def ahv_numbers(draw: st.DrawFn) -> str:
    """The 13 digits of a valid AHV number."""
    body = "756" + draw(st.text(DIGITS, min_size=9, max_size=9))
    return body + ean13_check_digit(body)


@st.composite
def written_ahv(draw: st.DrawFn) -> tuple[str, str]:
    """(digits, the way a person wrote them): dots, spaces or nothing between the groups."""
    digits = draw(ahv_numbers())
    groups = [digits[:3], digits[3:7], digits[7:11], digits[11:]]
    text = groups[0]
    for group in groups[1:]:
        text += draw(st.sampled_from([".", " ", "", ". "])) + group
    padding = st.sampled_from(["", " ", "\t"])
    return digits, draw(padding) + text + draw(padding)


@given(written_ahv())
def test_ahv_written_any_way_normalises_to_its_digits(case):
    digits, text = case
    assert normalize_ahv(text) == digits
    assert is_valid_ahv(text)


@given(ahv_numbers())
def test_ahv_format_round_trips_and_is_idempotent(digits):
    formatted = format_ahv(digits)
    assert AHV_FORMAT.fullmatch(formatted)
    assert normalize_ahv(formatted) == digits
    assert format_ahv(formatted) == formatted


@given(ahv_numbers(), st.integers(3, 12), st.integers(1, 9))
def test_ahv_check_digit_catches_every_single_digit_typo(digits, position, shift):
    typo = digits[:position] + str((int(digits[position]) + shift) % 10) + digits[position + 1 :]
    assert not is_valid_ahv(typo)


@given(ahv_numbers(), st.integers(3, 10))
def test_ahv_check_digit_catches_swapped_neighbours_unless_they_differ_by_five(digits, i):
    swapped = digits[:i] + digits[i + 1] + digits[i] + digits[i + 2 :]
    # EAN-13's known blind spot: a swap of neighbours that differ by 5 keeps the sum mod 10.
    assume(abs(int(digits[i]) - int(digits[i + 1])) not in (0, 5))
    assert not is_valid_ahv(swapped)


@given(st.text())
def test_ahv_never_crashes_on_arbitrary_text(text):
    try:
        digits = normalize_ahv(text)
    except ValueError:
        assert not is_valid_ahv(text)
    else:
        assert is_valid_ahv(text) and digits.isascii() and len(digits) == 13
        assert digits.startswith("756")


@given(written_ahv())
def test_search_recognises_an_ahv_number_as_the_identifier_the_service_stores(case):
    _, text = case
    identifier = detect_identifier(format_ahv(text))
    assert identifier is not None
    assert (identifier.field, identifier.value) == ("ahv", normalize_ahv(text))


@st.composite
def written_zemis(draw: st.DrawFn) -> tuple[str, str]:
    """(key, the number as typed): letters and digits with separators between some of them."""
    key = draw(st.text(DIGITS + "ABCDEFXYZ", min_size=1, max_size=12))
    text = ""
    for char in key:
        text += draw(ZEMIS_SEPARATORS) if text else ""
        text += draw(st.sampled_from([char, char.lower()]))
    return key, text


@given(written_zemis())
def test_zemis_separators_and_case_do_not_change_the_key(case):
    key, text = case
    assert normalize_zemis(text) == key
    assert normalize_zemis(f"  {text} ") == key


@given(st.text(max_size=40))
def test_zemis_normalisation_is_idempotent_and_never_crashes(text):
    try:
        key = normalize_zemis(text)
    except ValueError:
        return
    assert key and key.isalnum() and key == key.upper()
    assert normalize_zemis(key) == key


@given(st.text(DIGITS, min_size=6, max_size=12), st.data())
def test_search_recognises_a_zemis_number_as_the_key_the_service_stores(digits, data):
    text = digits[0]
    for char in digits[1:]:
        text += data.draw(st.sampled_from([".", "-", "/", ""])) + char
    identifier = detect_identifier(text)
    assert identifier is not None
    assert (identifier.field, identifier.value) == ("zemis", normalize_zemis(text))
