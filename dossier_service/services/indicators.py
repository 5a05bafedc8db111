"""The canton's IAS report: case counts and the three IAS goal indicators, as of a day.

Everything is evaluated *as of* the end of the given day (Europe/Zurich): a case counts
if it was registered by then; its status, target group and responsible unit are those in
force that day (closures, target-group periods and responsibilities are dated history).
Milestones are taken as entered now, by the date they carry.

Definitions (each indicator reports numerator and denominator; share = n / d):

``language_a1_within_3_years`` (IAS goal 1: everyone reaches A1 within 3 years)
    denominator: persons whose entry date + 3 years ≤ as_of (the full window has passed);
    numerator: of those, persons with a ``language_level`` milestone of A1 or higher
    (A1, A2, B1, B2, C1, C2; not pre_A1) dated ≤ entry date + 3 years.

``education_5_years_age_16_25`` (goal 3: two thirds of 16–25-year-olds are in
post-compulsory education 5 years after entry)
    denominator: persons whose entry date + 5 years ≤ as_of and who were *certainly* 16–25
    years old at entry. Birth dates may be partial (eCH-0044: year or year-month), so the
    age is an interval: the youngest possible age uses the latest possible birth date,
    the oldest possible age the earliest. Conservatively a person counts only if the
    youngest possible age is ≥ 16 and the oldest possible age is ≤ 25; persons whose
    interval straddles a bound are left out of numerator and denominator and reported as
    ``excluded_uncertain_age``;
    numerator: of those, persons whose education status on entry + 5 years is
    post-compulsory education: the latest ``education`` milestone dated ≤ entry + 5 years
    is apprenticeship_eba, apprenticeship_efz, upper_secondary_school, tertiary or
    completed_upper_secondary (bridge offers and pre-apprenticeships prepare for it and
    do not count; ``none`` ends a status).

``labour_market_7_years_adults`` (goal 4: half of the adults are in the first labour
market 7 years after entry)
    denominator: persons whose entry date + 7 years ≤ as_of and who were certainly adult
    (youngest possible age ≥ 18) at entry; uncertain ages are excluded as above;
    numerator: of those, persons whose latest ``employment`` milestone dated ≤ entry + 7
    years is first_labour_market_full_time or first_labour_market_part_time. Whether the
    employment is *sustainable* is the caseworker's judgement when entering it.

In every indicator a person leaves the cohort (numerator and denominator) if the case was
closed, as of the report day, for ``moved_out_of_canton`` or ``deceased`` on or before the
measurement day: the outcome could not be observed here.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from dossier_service.dates import day_start, local_date, swiss_date
from dossier_service.identifiers import parse_partial_date
from dossier_service.identity import Identity
from dossier_service.models import (
    Case,
    CaseClosure,
    Milestone,
    Responsibility,
    TargetGroupAssignment,
    Unit,
)
from dossier_service.models.process import TARGET_GROUPS
from dossier_service.policy import Action, require
from dossier_service.services import audit

A1_OR_HIGHER = frozenset({"A1", "A2", "B1", "B2", "C1", "C2"})
POST_COMPULSORY = frozenset(
    {
        "apprenticeship_eba",
        "apprenticeship_efz",
        "upper_secondary_school",
        "tertiary",
        "completed_upper_secondary",
    }
)
FIRST_LABOUR_MARKET = frozenset({"first_labour_market_full_time", "first_labour_market_part_time"})
LEFT_COHORT = frozenset({"moved_out_of_canton", "deceased"})
STATUS_LABELS = {"open": "offen", "closed": "abgeschlossen"}


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day so many months later (or earlier); a missing day becomes the month's last."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    for last in (31, 30, 29, 28):
        try:
            return dt.date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise ValueError(f"cannot move {day} by {months} months")  # pragma: no cover


def add_years(day: dt.date, years: int) -> dt.date:
    """The same day so many years later (29 February becomes 28 February)."""
    return add_months(day, 12 * years)


def age_on(birth: dt.date, day: dt.date) -> int:
    """Completed years of a person born on ``birth`` on ``day``."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def age_bounds(birth_date: str, day: dt.date) -> tuple[int, int]:
    """(youngest, oldest) possible age on a day for a possibly partial birth date."""
    partial = parse_partial_date(birth_date)
    return age_on(partial.latest(), day), age_on(partial.earliest(), day)


@dataclass
class _Indicator:
    id: str
    label: str
    goal: str
    years: int
    target_share: float
    numerator: int = 0
    denominator: int = 0
    excluded_uncertain_age: int = 0
    left_cohort: int = 0

    def as_dict(self) -> dict[str, Any]:
        share = round(self.numerator / self.denominator, 4) if self.denominator else None
        return {
            "id": self.id,
            "label": self.label,
            "goal": self.goal,
            "years_after_entry": self.years,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "share": share,
            "target_share": self.target_share,
            "excluded_uncertain_age": self.excluded_uncertain_age,
            "left_cohort": self.left_cohort,
        }


def _status_on(events: list[tuple[dt.date, int, str]], day: dt.date) -> str | None:
    """The value of the latest milestone dated on or before the day (ties: entered last)."""
    best: tuple[dt.date, int, str] | None = None
    for event in events:
        if event[0] <= day and (best is None or event[:2] > best[:2]):
            best = event
    return best[2] if best else None


def ias_report(session: Session, identity: Identity, as_of: dt.date) -> dict[str, Any]:
    """Counts by status, target group and unit, and the goal indicators (canton only)."""
    require(identity, Action.REPORT_READ)
    end = day_start(as_of + dt.timedelta(days=1))  # exclusive: the whole as_of day counts

    def in_force(start: Any, stop: Any) -> Any:
        return and_(start < end, or_(stop.is_(None), stop >= end))

    cases = session.execute(
        select(Case.id, Case.entry_date, Case.birth_date).where(Case.created_at < end)
    ).all()
    closed = {
        row.case_id: (row.reason, local_date(row.closed_at))
        for row in session.execute(
            select(CaseClosure.case_id, CaseClosure.reason, CaseClosure.closed_at).where(
                in_force(CaseClosure.closed_at, CaseClosure.reopened_at)
            )
        )
    }
    groups = dict(
        session.execute(
            select(TargetGroupAssignment.case_id, TargetGroupAssignment.target_group).where(
                in_force(TargetGroupAssignment.started_at, TargetGroupAssignment.ended_at)
            )
        ).all()
    )
    units = {
        row.case_id: (row.code, row.name, row.kind)
        for row in session.execute(
            select(Responsibility.case_id, Unit.code, Unit.name, Unit.kind)
            .join(Unit, Unit.id == Responsibility.unit_id)
            .where(in_force(Responsibility.started_at, Responsibility.ended_at))
        )
    }
    events: dict[tuple[str, str], list[tuple[dt.date, int, str]]] = defaultdict(list)
    for row in session.execute(
        select(Milestone.case_id, Milestone.kind, Milestone.value, Milestone.date, Milestone.id)
    ):
        events[(row.case_id, row.kind)].append((row.date, row.id, row.value))

    by_status: Counter[str] = Counter()
    by_group: Counter[str] = Counter()
    by_unit: dict[str, dict[str, Any]] = {}
    indicators = {
        "a1": _Indicator(
            "language_a1_within_3_years", "Sprachniveau A1 innert 3 Jahren", "IAS-Ziel 1", 3, 1.0
        ),
        "edu": _Indicator(
            "education_5_years_age_16_25",
            "16–25-Jährige 5 Jahre nach Einreise in postobligatorischer Ausbildung",
            "IAS-Ziel 3",
            5,
            round(2 / 3, 4),
        ),
        "work": _Indicator(
            "labour_market_7_years_adults",
            "Erwachsene 7 Jahre nach Einreise im ersten Arbeitsmarkt",
            "IAS-Ziel 4",
            7,
            0.5,
        ),
    }
    for case_id, entry, birth in cases:
        status = "closed" if case_id in closed else "open"
        group = groups.get(case_id, "unassigned")
        by_status[status] += 1
        by_group[group] += 1
        code, name, kind = units.get(case_id, ("unknown", "unbekannt", "unknown"))
        unit_row = by_unit.setdefault(
            code,
            {
                "unit": {"code": code, "name": name, "kind": kind},
                "total": 0,
                "open": 0,
                "closed": 0,
                "by_target_group": dict.fromkeys([*TARGET_GROUPS, "unassigned"], 0),
            },
        )
        unit_row["total"] += 1
        unit_row[status] += 1
        unit_row["by_target_group"][group] += 1

        youngest, oldest = age_bounds(birth, entry)
        closure = closed.get(case_id)
        for key, indicator in indicators.items():
            point = add_years(entry, indicator.years)
            if point > as_of:
                continue
            if closure and closure[0] in LEFT_COHORT and closure[1] <= point:
                indicator.left_cohort += 1
                continue
            if key == "edu":
                certain, possible = youngest >= 16 and oldest <= 25, oldest >= 16 and youngest <= 25
                if not certain:
                    indicator.excluded_uncertain_age += int(possible)
                    continue
                reached = _status_on(events[(case_id, "education")], point) in POST_COMPULSORY
            elif key == "work":
                certain, possible = youngest >= 18, oldest >= 18
                if not certain:
                    indicator.excluded_uncertain_age += int(possible)
                    continue
                reached = _status_on(events[(case_id, "employment")], point) in (
                    FIRST_LABOUR_MARKET
                )
            else:
                reached = any(
                    d <= point and value in A1_OR_HIGHER
                    for d, _id, value in events[(case_id, "language_level")]
                )
            indicator.denominator += 1
            indicator.numerator += int(reached)

    report = {
        "as_of": as_of.isoformat(),
        "cases": {
            "total": len(cases),
            "by_status": {s: by_status.get(s, 0) for s in ("open", "closed")},
            "by_target_group": {g: by_group.get(g, 0) for g in [*TARGET_GROUPS, "unassigned"]},
            "by_unit": sorted(
                by_unit.values(), key=lambda r: (r["unit"]["kind"], r["unit"]["code"])
            ),
        },
        "indicators": [i.as_dict() for i in indicators.values()],
    }
    audit.record(
        session,
        identity,
        "report.read",
        detail={"report": "ias", "as_of": as_of.isoformat(), "cases": len(cases)},
    )
    return report


def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet cannot mistake for a formula."""
    text = "" if value is None else str(value)
    if text[:1] in {"=", "+", "-", "@", "\t", "\r"}:
        return "'" + text
    return text


def ias_csv(report: dict[str, Any]) -> bytes:
    """The report as CSV for Swiss Excel: ';'-separated, UTF-8 with BOM, one header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(
        ["Stichtag", "Bereich", "Schlüssel", "Bezeichnung", "Anzahl", "Zähler", "Nenner", "Anteil"]
    )
    as_of = swiss_date(dt.date.fromisoformat(report["as_of"]))
    cases = report["cases"]

    def row(
        section: str,
        key: str,
        label: str,
        count: Any = "",
        num: Any = "",
        den: Any = "",
        share: Any = "",
    ) -> None:
        writer.writerow([_cell(v) for v in (as_of, section, key, label, count, num, den, share)])

    row("Fälle", "total", "alle Fälle", cases["total"])
    for status, count in cases["by_status"].items():
        row("Status", status, STATUS_LABELS[status], count)
    for group, count in cases["by_target_group"].items():
        row("Zielgruppe", group, TARGET_GROUPS.get(group, "ohne Zielgruppe"), count)
    for unit_row in cases["by_unit"]:
        unit = unit_row["unit"]
        row("Zuständige Stelle", unit["code"], unit["name"], unit_row["total"])
    for indicator in report["indicators"]:
        share = indicator["share"]
        row(
            "Indikator",
            indicator["id"],
            indicator["label"],
            "",
            indicator["numerator"],
            indicator["denominator"],
            "" if share is None else f"{share:.4f}",
        )
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")
