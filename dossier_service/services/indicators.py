"""The canton's IAS report: case counts and the five IAS goal indicators, as of a day.

Everything is evaluated *as of* the end of the given day (Europe/Zurich): a case counts
if it was registered by then; its status, target group and responsible unit are those in
force that day (closures, target-group periods and responsibilities are dated history).
Milestones are taken as entered now, by the date they carry.

Who is counted (every indicator): only persons whose residence status in force on the
report day is F (provisionally admitted) or B (recognised refugee); asylum seekers (N)
are in no denominator (``population.excluded_status_n``). The status in force is the
latest residence status change recorded by the end of the day (else the status at
registration).

Cohorts (``cohorts``: one row per year) count from the *regulation*: the anchor of a
person is the ``regulation_date`` of the decision that gave F or B. Where a person has F
or B but no regulation date is known (cases registered before it was recorded), the entry
date into the canton is the anchor instead; ``population.cohort_from_entry_date`` says
how many persons that is. Every deadline below is "anchor + n years".

Ages are taken at the anchor (the age at regulation decides whether a person belongs to
a goal's population, so the population of a cohort does not change as it ages), except
for goal 2, which is about the day of school entry itself.

School entry (Aargau): a child starts Kindergarten on 1 August of the year in which it
turns 4 by 31 July (Stichtag 31. Juli). A *small child* is one whose school entry lies
after its anchor: it grows into goal 2, not goal 1.

Birth dates may be partial (eCH-0044: year or year-month), so an age or a school entry
is an interval (latest and earliest possible birth date). A person counts only where the
answer is certain; persons whose interval straddles a bound are left out of numerator and
denominator and reported as ``excluded_uncertain_age``.

Definitions (each indicator reports numerator and denominator; share = n / d; a person is
in a denominator once the deadline has passed on the report day):

``language_a1_within_3_years`` (IAS goal 1: everyone reaches A1 within 3 years)
    denominator: persons already of school age at the anchor (small children are reported
    as ``excluded_small_child``), deadline anchor + 3 years;
    numerator: of those, persons with a ``language_level`` milestone of A1 or higher
    (A1, A2, B1, B2, C1, C2; not pre_A1) dated ≤ the deadline.

``school_language_at_school_entry`` (goal 2: 80% of the children who arrive before school
age can communicate in the local language when they start school)
    denominator: small children (school entry after the anchor) whose school entry is
    known for certain; the deadline is 31 January after school entry (the end of the first
    semester: the assessment is recorded in the first weeks of school);
    numerator: of those, children whose latest ``school_language`` milestone dated ≤ the
    deadline is ``achieved``.

``education_5_years_age_16_25`` (goal 3: two thirds of 16–25-year-olds are in
post-compulsory education 5 years after the regulation)
    denominator: persons certainly 16–25 years old at the anchor, deadline anchor + 5
    years;
    numerator: of those, persons whose latest ``education`` milestone dated ≤ the deadline
    is apprenticeship_eba, apprenticeship_efz, upper_secondary_school, tertiary or
    completed_upper_secondary (bridge offers and pre-apprenticeships prepare for it and
    do not count; ``none`` ends a status).

``labour_market_7_years_adults`` (goal 4: half of the adults are in the first labour
market 7 years after the regulation)
    denominator: persons certainly adult (≥ 18) at the anchor, deadline anchor + 7 years;
    numerator: of those, persons whose latest ``employment`` milestone dated ≤ the deadline
    is first_labour_market_full_time or first_labour_market_part_time. Whether the
    employment is *sustainable* is the caseworker's judgement when entering it.

``social_life_7_years`` (goal 5: everyone is familiar with Swiss ways of life and has
social contacts with the local population 7 years after the regulation)
    denominator: every F/B person (the goal names no age), deadline anchor + 7 years;
    numerator: of those, persons whose latest ``social_life`` milestone dated ≤ the
    deadline is ``achieved``.

Younger cohorts show their progress: a member whose deadline has not passed yet counts
in ``pending`` and, if the milestone is already reached on the report day, in
``pending_reached``; neither enters numerator or denominator.

In every indicator a person leaves the cohort (numerator and denominator) if the case was
closed, as of the report day, for ``moved_out_of_canton`` or ``deceased`` on or before the
deadline: the outcome could not be observed here.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    ResidenceStatusChange,
    Responsibility,
    TargetGroupAssignment,
    Unit,
)
from dossier_service.models.process import MILESTONE_VALUES, TARGET_GROUPS
from dossier_service.policy import Action, require
from dossier_service.services import audit
from dossier_service.services.person import REGULATED_STATUSES

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
POPULATION_LABELS = {
    "regulated": "Personen mit Status F oder B (gezählt)",
    "excluded_status_n": "Personen mit Status N (nicht gezählt)",
    "cohort_from_entry_date": "Kohorte ab Einreise (Regelungsdatum unbekannt)",
}


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


def school_entry(birth: dt.date) -> dt.date:
    """The day a child born on ``birth`` starts Kindergarten in Aargau (4 by 31 July)."""
    year = birth.year + 4 if (birth.month, birth.day) <= (7, 31) else birth.year + 5
    return dt.date(year, 8, 1)


def school_entry_bounds(birth_date: str) -> tuple[dt.date, dt.date]:
    """(earliest, latest) possible school entry for a possibly partial birth date."""
    partial = parse_partial_date(birth_date)
    return school_entry(partial.earliest()), school_entry(partial.latest())


@dataclass
class _Cohort:
    numerator: int = 0
    denominator: int = 0
    pending: int = 0
    pending_reached: int = 0

    def as_dict(self, year: int) -> dict[str, Any]:
        share = round(self.numerator / self.denominator, 4) if self.denominator else None
        return {
            "year": year,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "share": share,
            "pending": self.pending,
            "pending_reached": self.pending_reached,
        }


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
    excluded_small_child: int = 0
    left_cohort: int = 0
    pending: int = 0
    pending_reached: int = 0
    cohorts: dict[int, _Cohort] = field(default_factory=dict)

    def count(self, year: int, reached: bool, due: bool) -> None:
        """Count a member of the cohort ``year``: in the denominator once due, else pending."""
        cohort = self.cohorts.setdefault(year, _Cohort())
        if due:
            self.denominator += 1
            self.numerator += int(reached)
            cohort.denominator += 1
            cohort.numerator += int(reached)
        else:
            self.pending += 1
            self.pending_reached += int(reached)
            cohort.pending += 1
            cohort.pending_reached += int(reached)

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
            "excluded_small_child": self.excluded_small_child,
            "left_cohort": self.left_cohort,
            "pending": self.pending,
            "pending_reached": self.pending_reached,
            "cohorts": [self.cohorts[y].as_dict(y) for y in sorted(self.cohorts)],
        }


def _status_on(events: list[tuple[dt.date, int, str]], day: dt.date) -> str | None:
    """The value of the latest milestone dated on or before the day (ties: entered last)."""
    best: tuple[dt.date, int, str] | None = None
    for event in events:
        if event[0] <= day and (best is None or event[:2] > best[:2]):
            best = event
    return best[2] if best else None


def _indicators() -> dict[str, _Indicator]:
    """The five goal indicators, empty, in the order of the IAS goals."""
    return {
        "a1": _Indicator(
            "language_a1_within_3_years", "Sprachniveau A1 innert 3 Jahren", "IAS-Ziel 1", 3, 1.0
        ),
        "school": _Indicator(
            "school_language_at_school_entry",
            "Kinder verständigen sich beim Schuleintritt in der Ortssprache",
            "IAS-Ziel 2",
            0,
            0.8,
        ),
        "edu": _Indicator(
            "education_5_years_age_16_25",
            "16–25-Jährige 5 Jahre nach Regelung in postobligatorischer Ausbildung",
            "IAS-Ziel 3",
            5,
            round(2 / 3, 4),
        ),
        "work": _Indicator(
            "labour_market_7_years_adults",
            "Erwachsene 7 Jahre nach Regelung im ersten Arbeitsmarkt",
            "IAS-Ziel 4",
            7,
            0.5,
        ),
        "social": _Indicator(
            "social_life_7_years",
            "Vertraut mit dem Leben in der Schweiz, Kontakte zur Bevölkerung nach 7 Jahren",
            "IAS-Ziel 5",
            7,
            1.0,
        ),
    }


def _statuses(session: Session, end: dt.datetime) -> dict[str, tuple[str, dt.date | None]]:
    """The status and its regulation date in force at ``end`` of each case that has a status
    history (cases without one still have the status they were registered with)."""
    in_force: dict[str, tuple[str, dt.date | None]] = {}
    rows = session.execute(
        select(
            ResidenceStatusChange.case_id,
            ResidenceStatusChange.old_status,
            ResidenceStatusChange.new_status,
            ResidenceStatusChange.regulation_date,
            ResidenceStatusChange.changed_at,
        ).order_by(ResidenceStatusChange.changed_at, ResidenceStatusChange.id)
    ).all()
    first_old: dict[str, str] = {}
    for row in rows:
        first_old.setdefault(row.case_id, row.old_status)
        if row.changed_at < end:
            in_force[row.case_id] = (row.new_status, row.regulation_date)
    for case_id, old in first_old.items():
        if case_id not in in_force:
            # Changed only after the day: the status at registration was in force; its
            # regulation date (if any) was not kept apart, so the entry date stands in.
            in_force[case_id] = (old, None)
    return in_force


def ias_report(session: Session, identity: Identity, as_of: dt.date) -> dict[str, Any]:
    """Counts by status, target group and unit, and the goal indicators (canton only)."""
    require(identity, Action.REPORT_READ)
    end = day_start(as_of + dt.timedelta(days=1))  # exclusive: the whole as_of day counts

    def in_force(start: Any, stop: Any) -> Any:
        return and_(start < end, or_(stop.is_(None), stop >= end))

    cases = session.execute(
        select(
            Case.id, Case.entry_date, Case.birth_date, Case.residence_status, Case.regulation_date
        ).where(Case.created_at < end)
    ).all()
    status_by_case = _statuses(session, end)
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
    population = {"regulated": 0, "excluded_status_n": 0, "cohort_from_entry_date": 0}
    indicators = _indicators()
    for case_id, entry, birth, current_status, current_regulation in cases:
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

        residence, regulation = status_by_case.get(case_id, (current_status, current_regulation))
        if residence not in REGULATED_STATUSES:
            population["excluded_status_n"] += 1
            continue
        population["regulated"] += 1
        if regulation is None:
            population["cohort_from_entry_date"] += 1
        anchor = regulation or entry
        _count_person(
            indicators,
            anchor=anchor,
            birth=birth,
            closure=closed.get(case_id),
            milestones={kind: events.get((case_id, kind), []) for kind in MILESTONE_VALUES},
            as_of=as_of,
        )

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
        "population": population,
        "indicators": [i.as_dict() for i in indicators.values()],
    }
    audit.record(
        session,
        identity,
        "report.read",
        detail={"report": "ias", "as_of": as_of.isoformat(), "cases": len(cases)},
    )
    return report


def _count_person(
    indicators: dict[str, _Indicator],
    *,
    anchor: dt.date,
    birth: str,
    closure: tuple[str, dt.date] | None,
    milestones: Mapping[str, list[tuple[dt.date, int, str]]],
    as_of: dt.date,
) -> None:
    """Count one F/B person into the goals whose population it belongs to."""
    youngest, oldest = age_bounds(birth, anchor)
    entry_early, entry_late = school_entry_bounds(birth)
    small_child = entry_early > anchor
    school_age = entry_late <= anchor
    for key, indicator in indicators.items():
        if key == "a1":
            if small_child:
                indicator.excluded_small_child += 1
                continue
            if not school_age:
                indicator.excluded_uncertain_age += 1
                continue
            deadline = add_years(anchor, 3)
        elif key == "school":
            if school_age:
                continue  # already at school at the regulation: goal 1's population
            if not small_child or entry_early != entry_late:
                indicator.excluded_uncertain_age += 1
                continue
            deadline = dt.date(entry_early.year + 1, 1, 31)
        elif key == "edu":
            certain, possible = youngest >= 16 and oldest <= 25, oldest >= 16 and youngest <= 25
            if not certain:
                indicator.excluded_uncertain_age += int(possible)
                continue
            deadline = add_years(anchor, 5)
        elif key == "work":
            certain, possible = youngest >= 18, oldest >= 18
            if not certain:
                indicator.excluded_uncertain_age += int(possible)
                continue
            deadline = add_years(anchor, 7)
        else:
            deadline = add_years(anchor, 7)
        due = deadline <= as_of
        if closure and closure[0] in LEFT_COHORT and closure[1] <= min(deadline, as_of):
            indicator.left_cohort += int(due)
            continue
        indicator.count(anchor.year, _reached(key, milestones, min(deadline, as_of)), due)


def _reached(key: str, events: Mapping[str, list[tuple[dt.date, int, str]]], day: dt.date) -> bool:
    """Whether the goal's milestone is reached on the day (by the milestones dated until)."""
    if key == "a1":
        return any(d <= day and value in A1_OR_HIGHER for d, _id, value in events["language_level"])
    if key == "school":
        return _status_on(events["school_language"], day) == "achieved"
    if key == "edu":
        return _status_on(events["education"], day) in POST_COMPULSORY
    if key == "work":
        return _status_on(events["employment"], day) in FIRST_LABOUR_MARKET
    return _status_on(events["social_life"], day) == "achieved"


def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet cannot mistake for a formula."""
    text = "" if value is None else str(value)
    if text[:1] in {"=", "+", "-", "@", "\t", "\r"}:
        return "'" + text
    return text


def ias_csv(report: dict[str, Any]) -> bytes:
    """The report as CSV for Swiss Excel: ';'-separated, UTF-8 with BOM, one header row;
    each indicator is followed by its cohorts (section "Kohorte <year of regulation>")."""
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
    for key, count in report["population"].items():
        row("Grundgesamtheit", key, POPULATION_LABELS[key], count)
    for indicator in report["indicators"]:
        for section, item in [("Indikator", indicator)] + [
            (f"Kohorte {cohort['year']}", cohort) for cohort in indicator["cohorts"]
        ]:
            share = item["share"]
            row(
                section,
                indicator["id"],
                indicator["label"],
                "",
                item["numerator"],
                item["denominator"],
                "" if share is None else f"{share:.4f}",
            )
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")
