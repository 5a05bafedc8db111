"""Time and calendar: UTC timestamps, the canton's time zone and Swiss date formats.

Timestamps are stored in UTC; calendar days (entry dates, "today", report days) are days in
Zurich. Every page, letter, archive package and disclosure writes dates the Swiss way,
dd.mm.yyyy, with these functions.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from dossier_service.identifiers import parse_partial_date

#: The canton's time zone: calendar days (entry dates, "today") are days in Zurich.
LOCAL_ZONE = ZoneInfo("Europe/Zurich")


def utcnow() -> dt.datetime:
    """Current time as an aware UTC datetime."""
    return dt.datetime.now(dt.UTC)


def local_today() -> dt.date:
    """Today's date in Zurich (the server clock runs in UTC)."""
    return dt.datetime.now(LOCAL_ZONE).date()


def local(moment: dt.datetime) -> dt.datetime:
    """A stored (UTC) timestamp in the canton's time zone."""
    return moment.astimezone(LOCAL_ZONE)


def local_date(moment: dt.datetime) -> dt.date:
    """The Zurich calendar day of a timestamp."""
    return local(moment).date()


def day_start(day: dt.date) -> dt.datetime:
    """Midnight at the start of the day in Zurich, as an aware datetime."""
    return dt.datetime.combine(day, dt.time(0), tzinfo=LOCAL_ZONE)


def local_iso(moment: dt.datetime) -> str:
    """Local time in ISO 8601 to the second, with its UTC offset."""
    return local(moment).isoformat(timespec="seconds")


def zip_time(moment: dt.datetime) -> tuple[int, int, int, int, int, int]:
    """A ZIP entry's local date and time (the format knows no zone and nothing before 1980)."""
    moment = local(moment)
    if moment.year < 1980:
        return (1980, 1, 1, 0, 0, 0)
    return (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)


def swiss_date(value: dt.date | dt.datetime | None) -> str:
    """dd.mm.yyyy (a timestamp is first converted to local time); empty for None."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        value = local(value)
    return value.strftime("%d.%m.%Y")


def swiss_datetime(value: dt.datetime | None) -> str:
    """dd.mm.yyyy HH:MM in local time; empty for None."""
    if value is None:
        return ""
    return local(value).strftime("%d.%m.%Y %H:%M")


def swiss_partial_date(text: str | None) -> str:
    """An eCH-0044 date (YYYY, YYYY-MM, YYYY-MM-DD) as a Swiss reader writes it: 1998,
    03.1998 or 02.11.1987; empty for None or empty text."""
    if not text:
        return ""
    partial = parse_partial_date(text)
    if partial.month is None:
        return f"{partial.year}"
    if partial.day is None:
        return f"{partial.month:02d}.{partial.year}"
    return swiss_date(partial.earliest())
