"""Tests for AHV/ZEMIS numbers, eCH-0044 partial dates, codes and display filenames."""

from __future__ import annotations

import datetime as dt

import pytest

from dossier_service.identifiers import (
    RESIDENCE_STATUSES,
    SEX_CODES,
    PartialDate,
    format_ahv,
    is_valid_ahv,
    normalize_ahv,
    normalize_zemis,
    parse_partial_date,
    sanitize_filename,
)
from dossier_service.labels import RESIDENCE_STATUS

# --- AHV ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "756.9217.0769.85",
        "7569217076985",
        " 756 9217 0769 85 ",
        "756.9217.076985",
        "756\u00a09217.0769.85",
    ],
)
def test_ahv_valid_forms_normalise_to_13_digits(text: str) -> None:
    assert normalize_ahv(text) == "7569217076985"
    assert is_valid_ahv(text)


def test_ahv_format() -> None:
    assert format_ahv("7569217076985") == "756.9217.0769.85"
    assert format_ahv("756.9217.0769.85") == "756.9217.0769.85"


def test_ahv_check_digit_computed_from_the_left() -> None:
    # Build a second valid number independently: weights 1,3,1,3,... from the left.
    first12 = "756123456789"
    total = sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(first12))
    number = first12 + str((10 - total % 10) % 10)
    assert normalize_ahv(number) == number
    wrong = first12 + str((int(number[-1]) + 1) % 10)
    with pytest.raises(ValueError, match="check digit"):
        normalize_ahv(wrong)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("756.9217.0769.84", "check digit"),
        ("757.9217.0769.85", "start with 756"),
        ("756.9217.0769.8", "13 digits"),
        ("756.9217.0769.850", "13 digits"),
        ("", "13 digits"),
        ("756.9217.0769.8A", "only contain digits"),
        ("756-9217-0769-85", "only contain digits"),
        # Arabic-Indic digits look like digits (str.isdigit() is True) but are not accepted.
        ("٧٥٦٩٢١٧٠٧٦٩٨٥", "only contain digits"),
    ],
)
def test_ahv_invalid(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalize_ahv(text)
    assert not is_valid_ahv(text)


def test_ahv_error_message_does_not_echo_the_number() -> None:
    with pytest.raises(ValueError) as info:
        normalize_ahv("756.9217.0769.84")
    assert "9217" not in str(info.value)


def test_format_ahv_rejects_invalid() -> None:
    with pytest.raises(ValueError):
        format_ahv("1234567890123")


# --- ZEMIS --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("12345678", "12345678"),
        ("1234.5678", "12345678"),
        ("  1234-5678 ", "12345678"),
        ("n 123/456.7", "N1234567"),
        ("ab-12", "AB12"),
    ],
)
def test_zemis_normalised_for_search(text: str, key: str) -> None:
    assert normalize_zemis(text) == key


def test_zemis_with_and_without_separators_match() -> None:
    assert normalize_zemis("1234.5678.9") == normalize_zemis("123456789")


@pytest.mark.parametrize(
    "text",
    ["", "   ", "---", "1" * 33, "1234_5678", "1234;DROP", "12345\u0663", "Müller", "12\n34"],
)
def test_zemis_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        normalize_zemis(text)


def test_zemis_32_characters_allowed() -> None:
    assert normalize_zemis("1" * 32) == "1" * 32


# --- Partial dates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1990", PartialDate(1990)),
        ("1990-04", PartialDate(1990, 4)),
        ("1990-04-17", PartialDate(1990, 4, 17)),
        ("2000-02-29", PartialDate(2000, 2, 29)),
        (" 1985-12 ", PartialDate(1985, 12)),
    ],
)
def test_partial_date_valid_shapes_round_trip(text: str, expected: PartialDate) -> None:
    parsed = parse_partial_date(text)
    assert parsed == expected
    assert parsed.isoformat() == text.strip()
    assert str(parsed) == text.strip()
    assert parse_partial_date(parsed.isoformat()) == parsed


@pytest.mark.parametrize(
    "text",
    [
        "1990-02-30",
        "1900-02-29",
        "1990-13",
        "1990-00",
        "1990-04-00",
        "1899",
        "2101",
        "90",
        "1990-4",
        "1990-04-7",
        "17.04.1990",
        "1990--17",
        "",
        "1990-04-17T00:00",
    ],
)
def test_partial_date_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        parse_partial_date(text)


def test_partial_date_day_without_month_rejected() -> None:
    with pytest.raises(ValueError, match="month"):
        PartialDate(1990, None, 17)


def test_partial_date_constructor_validates() -> None:
    with pytest.raises(ValueError):
        PartialDate(1990, 2, 30)
    with pytest.raises(ValueError):
        PartialDate(True)  # bool is an int subclass, but not a year


def test_partial_date_earliest_latest() -> None:
    assert PartialDate(1990).earliest() == dt.date(1990, 1, 1)
    assert PartialDate(1990).latest() == dt.date(1990, 12, 31)
    assert PartialDate(2000, 2).earliest() == dt.date(2000, 2, 1)
    assert PartialDate(2000, 2).latest() == dt.date(2000, 2, 29)
    assert PartialDate(1990, 4, 17).earliest() == PartialDate(1990, 4, 17).latest()
    assert not PartialDate(1990, 4).is_complete
    assert PartialDate(1990, 4, 17).is_complete


def test_partial_date_is_frozen_and_hashable() -> None:
    date = PartialDate(1990, 4)
    with pytest.raises(AttributeError):
        date.year = 1991  # type: ignore[misc]
    assert {date, PartialDate(1990, 4)} == {date}


# --- Codes --------------------------------------------------------------------------------


def test_residence_statuses() -> None:
    assert RESIDENCE_STATUSES == ("N", "F", "B")
    assert set(RESIDENCE_STATUS) == set(RESIDENCE_STATUSES)
    assert RESIDENCE_STATUS["F"] == "F – vorläufig aufgenommen"
    with pytest.raises(TypeError):
        RESIDENCE_STATUS["X"] = "x"  # type: ignore[index]


def test_sex_codes() -> None:
    assert set(SEX_CODES) == {"female", "male", "unknown"}


# --- Filenames ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Bericht 2024.pdf", "Bericht 2024.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\evil\\x.pdf", "x.pdf"),
        ("C:x.pdf", "x.pdf"),
        ("/abs/path/Verfügung.docx", "Verfügung.docx"),
        (".htaccess", "htaccess"),
        ("...", "datei"),
        ("..", "datei"),
        ("", "datei"),
        (None, "datei"),
        ("   ", "datei"),
        ("dir/", "datei"),
        ("a\x00b.pdf", "ab.pdf"),
        ("line\nbreak\r\n.pdf", "line break .pdf"),
        ("  many   spaces\t.txt ", "many spaces .txt"),
        ("report.", "report"),
        ("\x1b[31mred.txt", "[31mred.txt"),
    ],
)
def test_sanitize_filename(name: str | None, expected: str) -> None:
    assert sanitize_filename(name) == expected


def test_sanitize_filename_script_tag_stays_text_without_path_parts() -> None:
    result = sanitize_filename("<script>alert(1)</script>.pdf")
    # "</script>" contains a slash, so everything before it is a "directory": what is left
    # is plain text; escaping it is the template's job, not the sanitiser's.
    assert result == "script>.pdf"
    assert "/" not in result and "\\" not in result


def test_sanitize_filename_bidi_override_removed() -> None:
    result = sanitize_filename("invoice\u202efdp.exe")
    assert result == "invoicefdp.exe"
    for cp in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)):
        assert chr(cp) not in sanitize_filename(f"a{chr(cp)}b.pdf")


def test_sanitize_filename_keeps_arabic_and_marks() -> None:
    name = "تقرير\u200f 2024.pdf"  # RLM is legitimate in right-to-left names
    assert sanitize_filename(name) == name


def test_sanitize_filename_long_name_keeps_extension_and_byte_limit() -> None:
    result = sanitize_filename("ä" * 300 + ".pdf")
    assert result.endswith(".pdf")
    assert len(result.encode("utf-8")) <= 200
    assert result.startswith("ä")
    # No split character: decoding must succeed and the stem only holds whole "ä".
    assert set(result[:-4]) == {"ä"}


def test_sanitize_filename_long_name_without_extension() -> None:
    result = sanitize_filename("x" * 500)
    assert result == "x" * 200


@pytest.mark.parametrize("prefix", ["", "x", "xy", "xyz"])
def test_sanitize_filename_truncation_keeps_whole_accented_letters(prefix: str) -> None:
    # "e" + acute + circumflex has no precomposed form: NFC leaves "é" + U+0302 (4 bytes).
    result = sanitize_filename(prefix + "e\u0301\u0302" * 100 + ".txt")
    assert len(result.encode("utf-8")) <= 200
    assert result.endswith(".txt")
    stem = result[len(prefix) : -4]
    assert stem.endswith("\u0302")
    assert stem.count("\u00e9") == stem.count("\u0302")


def test_sanitize_filename_nfc() -> None:
    assert sanitize_filename("Verfu\u0308gung.pdf") == "Verfügung.pdf"


def test_sanitize_filename_custom_fallback() -> None:
    assert sanitize_filename("///", fallback="dokument") == "dokument"
