"""Person identifiers and codes (AHV, ZEMIS, eCH-0044 dates, status) and display filenames."""

from __future__ import annotations

import calendar
import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

__all__ = [
    "RESIDENCE_STATUSES",
    "SEX_CODES",
    "PartialDate",
    "format_ahv",
    "is_valid_ahv",
    "normalize_ahv",
    "normalize_zemis",
    "parse_partial_date",
    "sanitize_filename",
]

# --- AHV number (AHVN13) ------------------------------------------------------------------

_AHV_PREFIX = "756"
_ASCII_DIGITS = frozenset("0123456789")


def _ean13_check_digit(first12: str) -> int:
    """EAN-13 check digit: weights 1,3,1,3,… from the left over the first 12 digits."""
    total = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(first12))
    return (10 - total % 10) % 10


def normalize_ahv(text: str) -> str:
    """Return the 13 digits of a valid AHV number written with or without dots and spaces."""
    # Error messages never echo the input: an AHV number is personal data and these messages
    # end up in logs and API responses.
    if not isinstance(text, str):
        raise ValueError("The AHV number must be given as text.")
    digits: list[str] = []
    for char in text:
        if char in _ASCII_DIGITS:
            digits.append(char)
        elif char == "." or char.isspace():
            continue
        else:
            # Only ASCII digits: str.isdigit() would also let Arabic-Indic or superscript
            # digits through, which look right on screen but never match a stored number.
            raise ValueError(
                "The AHV number may only contain digits, dots and spaces "
                "(written as 756.XXXX.XXXX.XX)."
            )
    number = "".join(digits)
    if len(number) != 13:
        raise ValueError(f"The AHV number must have 13 digits, but it has {len(number)}.")
    if not number.startswith(_AHV_PREFIX):
        raise ValueError("The AHV number must start with 756.")
    if _ean13_check_digit(number[:12]) != int(number[12]):
        raise ValueError("The AHV number is not valid: its check digit is wrong (typo?).")
    return number


def is_valid_ahv(text: str) -> bool:
    """Tell whether *text* is a valid AHV number (see :func:`normalize_ahv`)."""
    try:
        normalize_ahv(text)
    except ValueError:
        return False
    return True


def format_ahv(digits: str) -> str:
    """Format a valid AHV number as ``756.XXXX.XXXX.XX``."""
    number = normalize_ahv(digits)
    return f"{number[:3]}.{number[3:7]}.{number[7:11]}.{number[11:]}"


# --- ZEMIS number -------------------------------------------------------------------------

_ZEMIS_MAX_LENGTH = 32
_ZEMIS_ALLOWED = re.compile(r"[0-9A-Za-z./ \-]+")
_ZEMIS_SEPARATORS = re.compile(r"[^0-9A-Za-z]+")


def normalize_zemis(text: str) -> str:
    """Return the search key of a ZEMIS number: separators removed, letters upper-cased."""
    # The number itself is stored as entered (trimmed); this key is what search compares, so
    # "1234.5678" and "12345678" find the same person.
    if not isinstance(text, str):
        raise ValueError("The ZEMIS number must be given as text.")
    trimmed = text.strip()
    if not trimmed:
        raise ValueError("The ZEMIS number is empty.")
    if len(trimmed) > _ZEMIS_MAX_LENGTH:
        raise ValueError(f"The ZEMIS number is longer than {_ZEMIS_MAX_LENGTH} characters.")
    if not _ZEMIS_ALLOWED.fullmatch(trimmed):
        raise ValueError(
            "The ZEMIS number may only contain digits, letters, spaces and the separators . - /"
        )
    key = _ZEMIS_SEPARATORS.sub("", trimmed).upper()
    if not key:
        raise ValueError("The ZEMIS number contains no digits or letters.")
    return key


# --- eCH-0044 dates -----------------------------------------------------------------------

_MIN_YEAR = 1900
_MAX_YEAR = 2100
_PARTIAL_DATE = re.compile(r"(?P<year>[0-9]{4})(?:-(?P<month>[0-9]{2})(?:-(?P<day>[0-9]{2}))?)?")


def _check_int(name: str, value: object) -> int:
    """Reject non-integers (and bools, which are ints in Python) for a date part."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"The {name} of a date must be a whole number.")
    return value


@dataclass(frozen=True, slots=True)
class PartialDate:
    """A possibly incomplete date per eCH-0044: year only, year and month, or a full date."""

    year: int
    month: int | None = None
    day: int | None = None

    def __post_init__(self) -> None:
        """Validate on construction so no invalid PartialDate can exist."""
        year = _check_int("year", self.year)
        if not _MIN_YEAR <= year <= _MAX_YEAR:
            raise ValueError(f"The year must be between {_MIN_YEAR} and {_MAX_YEAR}.")
        if self.month is None:
            if self.day is not None:
                raise ValueError("A date with a day must also have a month.")
            return
        month = _check_int("month", self.month)
        if not 1 <= month <= 12:
            raise ValueError("The month must be between 01 and 12.")
        if self.day is None:
            return
        day = _check_int("day", self.day)
        last_day = calendar.monthrange(year, month)[1]
        if not 1 <= day <= last_day:
            raise ValueError(f"The day must be between 01 and {last_day:02d} for that month.")

    @property
    def is_complete(self) -> bool:
        """True when year, month and day are all known."""
        return self.day is not None

    def isoformat(self) -> str:
        """Return ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD``, matching the known parts."""
        text = f"{self.year:04d}"
        if self.month is not None:
            text += f"-{self.month:02d}"
            if self.day is not None:
                text += f"-{self.day:02d}"
        return text

    def earliest(self) -> dt.date:
        """Return the first calendar day this partial date may stand for."""
        return dt.date(self.year, self.month or 1, self.day or 1)

    def latest(self) -> dt.date:
        """Return the last calendar day this partial date may stand for."""
        month = self.month or 12
        day = self.day or calendar.monthrange(self.year, month)[1]
        return dt.date(self.year, month, day)

    def __str__(self) -> str:
        """Same as :meth:`isoformat`."""
        return self.isoformat()


def parse_partial_date(text: str) -> PartialDate:
    """Parse ``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` into a validated :class:`PartialDate`."""
    if not isinstance(text, str):
        raise ValueError("The date must be given as text.")
    match = _PARTIAL_DATE.fullmatch(text.strip())
    if match is None:
        raise ValueError("The date must be written as YYYY, YYYY-MM or YYYY-MM-DD.")
    month, day = match["month"], match["day"]
    return PartialDate(
        int(match["year"]),
        int(month) if month is not None else None,
        int(day) if day is not None else None,
    )


# --- Codes --------------------------------------------------------------------------------

#: Residence status of the people in integration cases: the permit letter (labels in
#: labels.RESIDENCE_STATUS).
RESIDENCE_STATUSES: tuple[str, ...] = ("N", "F", "B")

#: Sex codes; eCH-0044 allows "unknown", which asylum cases need.
SEX_CODES: tuple[str, ...] = ("female", "male", "unknown")


# --- Display filenames --------------------------------------------------------------------

_MAX_FILENAME_BYTES = 200
_MAX_EXTENSION_CHARS = 16
# Bidi embedding/override and isolate controls: they make "invoice\u202efdp.exe" display as
# "invoiceexe.pdf". Plain marks (LRM/RLM, ALM) stay: Arabic and Persian names need them.
_BIDI_CONTROLS = frozenset(chr(cp) for cp in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
_DRIVE_PREFIX = re.compile(r"^[A-Za-z]:")


def _truncate_utf8(text: str, max_bytes: int) -> str:
    """Cut *text* to at most *max_bytes* UTF-8 bytes without splitting a character."""
    cut = text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")
    # If the cut falls inside a character + combining marks cluster, drop the partial cluster
    # rather than show a base letter without its accents.
    if len(cut) < len(text) and _is_mark(text[len(cut)]):
        while cut and _is_mark(cut[-1]):
            cut = cut[:-1]
        cut = cut[:-1]
    return cut


def _is_mark(char: str) -> bool:
    """Tell whether *char* is a combining mark (Unicode category M*)."""
    return unicodedata.category(char).startswith("M")


def sanitize_filename(name: str | None, fallback: str = "datei") -> str:
    """Make an uploaded filename safe to display or send in Content-Disposition."""
    # Display only: storage keys never derive from this (ARCHITECTURE invariant 2). HTML
    # escaping is the template's job, so "<" and ">" stay as the user typed them.
    if not name:
        return fallback
    text = unicodedata.normalize("NFC", name)
    # Keep only the last path component; browsers on Windows send "C:\\dir\\file.pdf".
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = _DRIVE_PREFIX.sub("", text)
    text = "".join(c for c in text if c not in _BIDI_CONTROLS)
    # Whitespace controls (tab, newline) become spaces first, so words stay apart; the rest
    # of the control characters (NUL, ESC, DEL, C1) are dropped.
    text = " ".join(text.split())
    text = "".join(c for c in text if unicodedata.category(c) != "Cc")
    text = " ".join(text.split())
    # Leading dots would make hidden files ("..", ".bashrc"); Windows drops trailing ones.
    text = text.lstrip(". ").rstrip(". ")
    if len(text.encode("utf-8")) > _MAX_FILENAME_BYTES:
        stem, dot, ext = text.rpartition(".")
        if dot and stem and 0 < len(ext) < _MAX_EXTENSION_CHARS and " " not in ext:
            suffix = "." + ext
            stem = _truncate_utf8(stem, _MAX_FILENAME_BYTES - len(suffix.encode("utf-8")))
            text = stem.rstrip(". ") + suffix
        else:
            text = _truncate_utf8(text, _MAX_FILENAME_BYTES).rstrip(". ")
    text = unicodedata.normalize("NFC", text)
    if not text or text.startswith("."):
        return fallback
    return text
