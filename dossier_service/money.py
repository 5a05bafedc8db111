"""Swiss francs as people read them: every page, letter and report formats them here."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from babel.numbers import format_decimal, get_decimal_symbol, get_group_symbol

#: The locale of letters, the archive and the disclosure; pages pass the reader's language.
DEFAULT_LOCALE = "de_CH"

# Babel is asked for a pattern-neutral rendering ("1,000,000.00") and its separators are
# then swapped for the locale's own: Babel 2.19 strips the de-CH grouping sign "'" in pairs
# while unquoting pattern literals, so format_decimal(1000000, locale="de_CH") loses them.
_NEUTRAL = "en"


def format_chf(amount: Decimal | str | int, locale: str = DEFAULT_LOCALE) -> str:
    """An amount in Swiss francs, rounded to the Rappen, with the locale's grouping and
    decimal sign as Babel knows them (de-CH: 4'800.00; fr-CH: 4'800,00); no currency sign."""
    rounded = Decimal(amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    neutral = format_decimal(rounded, format="#,##0.00", locale=_NEUTRAL)
    separators: dict[str, str | int | None] = {
        ",": get_group_symbol(locale),
        ".": get_decimal_symbol(locale),
    }
    return neutral.translate(str.maketrans(separators))
