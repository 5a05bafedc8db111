"""Languages and Swiss formats of the pages: German (de-CH) by default, French, English.

Texts live in the templates and views in German (the source language) and are translated
through Flask-Babel's catalogues in ``dossier_service/translations``. Dates are written
the Swiss way, dd.mm.yyyy, in the canton's time zone, whatever the language.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Any

from babel.numbers import format_decimal, get_decimal_symbol
from flask import Flask, session
from flask_babel import Babel, get_locale, gettext
from markupsafe import Markup, escape

from dossier_service import labels
from dossier_service.dates import swiss_date, swiss_datetime, swiss_partial_date
from dossier_service.identifiers import format_ahv
from dossier_service.money import format_chf

LANGUAGES: dict[str, str] = {"de": "Deutsch", "fr": "Français", "en": "English"}
DEFAULT_LANGUAGE = "de"


def select_locale() -> str:
    """The language chosen in this session, German otherwise."""
    chosen = session.get("lang")
    return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE


def _swiss_locale() -> str:
    """The Babel locale for numbers: the chosen language as written in Switzerland."""
    return f"{get_locale() or DEFAULT_LANGUAGE}_CH"


def chf(amount: Decimal | str | None) -> str:
    """An amount in Swiss francs in the reader's language as written in Switzerland."""
    if amount is None:
        return ""
    return format_chf(amount, _swiss_locale())


def number(value: float | int) -> str:
    """A number with the Swiss grouping."""
    return format_decimal(value, locale=_swiss_locale())


def percent(value: float | None) -> str:
    """A share as a percentage with one decimal, e.g. 66.7 %."""
    if value is None:
        return "–"
    return format_decimal(value * 100, format="0.0", locale=_swiss_locale()) + " %"


def filesize(size: int) -> str:
    """Bytes for people: 812 B, 45.3 kB, 1.2 MB (with the language's decimal sign)."""
    if size < 1000:
        return f"{size} B"
    units = ("kB", "MB", "GB")
    value, index = size / 1000, 0
    while value >= 999.95 and index < len(units) - 1:
        value, index = value / 1000, index + 1
    unit = units[index]
    return f"{value:.1f}".replace(".", _decimal_symbol(_swiss_locale())) + f" {unit}"


@lru_cache(maxsize=8)
def _decimal_symbol(locale: str) -> str:
    """The decimal sign of a locale (cached: Babel's lookup is slow in long lists)."""
    return str(get_decimal_symbol(locale))


def ahv(digits: str | None) -> str:
    """An AHV number in its usual form 756.XXXX.XXXX.XX."""
    return format_ahv(digits) if digits else ""


def label(kind: str, code: str | None) -> str:
    """The word for a code from ``labels``, in the reader's language where translated."""
    text = labels.label(kind, code)
    return gettext(text) if text else ""


def nl2br(text: str | None) -> Markup:
    """Escaped text with its line breaks kept."""
    return Markup("<br>").join(escape(line) for line in (text or "").splitlines())


def init_app(app: Flask) -> None:
    """Install Flask-Babel and the format filters."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Europe/Zurich")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    Babel(app, locale_selector=select_locale)
    filters: dict[str, Any] = {
        "swiss_date": swiss_date,
        "swiss_datetime": swiss_datetime,
        "partial_date": swiss_partial_date,
        "chf": chf,
        "number": number,
        "percent": percent,
        "filesize": filesize,
        "ahv": ahv,
        "nl2br": nl2br,
    }
    app.jinja_env.filters.update(filters)
    app.jinja_env.globals["LANGUAGES"] = LANGUAGES
    app.jinja_env.globals["current_language"] = select_locale
    app.jinja_env.globals["label"] = label
