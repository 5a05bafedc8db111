"""Plausibility of the plan against the person's age: target groups and programmes.

A target group or a programme that contradicts the person's age (a 7-year-old among the
Ausbildungsfähige 16–25, a pre-apprenticeship for a child) is a typing or triage error, and
is refused with 422 ``implausible_age`` before anything is stored. The age counts on the
relevant day: the day the target group is set, the day a measure starts.

The ranges follow the Aargau implementation of the Integrationsagenda (docs: DOMAIN.md,
"Target groups and measures"): the Ausbildungsfähige are 16 to 25, the bridge offer BAI
takes 16 to 21, the integration courses, the pre-apprenticeship INVOL with its potential
assessment and the labour-market measures start at 16 (the end of compulsory school), and
early language support is for small children. Only clear contradictions are refused:
groups and programmes open to every age (language course, social integration, childcare,
other) have no rule.

eCH-0044 allows an incomplete birth date (year, or year and month). The age is then a
range, and only an age that is impossible for every day the person may have been born on
is refused: a person born in 2010 is 15 or 16 on 1 June 2026 and may join INVOL.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from dossier_service.errors import Unprocessable
from dossier_service.models.process import PROGRAMMES, TARGET_GROUPS


@dataclass(frozen=True)
class AgeRange:
    """Completed years of age a group or programme admits (None: no bound)."""

    minimum: int | None = None
    maximum: int | None = None

    def describe(self) -> str:
        """The range in English, as the API message names it."""
        if self.minimum is not None and self.maximum is not None:
            return f"an age of {self.minimum} to {self.maximum}"
        if self.minimum is not None:
            return f"an age of at least {self.minimum}"
        return f"an age of at most {self.maximum}"


#: Target groups bound to an age (codes of models.process.TARGET_GROUPS).
TARGET_GROUP_AGES: dict[str, AgeRange] = {
    "education": AgeRange(16, 25),
    "labour_market": AgeRange(minimum=16),
}

#: Programmes bound to an age (codes of labels.PROGRAMME).
PROGRAMME_AGES: dict[str, AgeRange] = {
    "early_language_support": AgeRange(maximum=6),
    "IKG1": AgeRange(minimum=16),
    "IKG2": AgeRange(minimum=16),
    "BAI": AgeRange(16, 21),
    "INVOL": AgeRange(minimum=16),
    "potential_assessment": AgeRange(minimum=16),
    "AMIplus": AgeRange(minimum=16),
    "employment_programme": AgeRange(minimum=16),
}

assert set(TARGET_GROUP_AGES) <= set(TARGET_GROUPS)
assert set(PROGRAMME_AGES) <= set(PROGRAMMES)


def _age(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def age_range(birth_date: str, on: dt.date) -> tuple[int, int]:
    """The youngest and oldest age on ``on`` of a person born on a (possibly partial) date."""
    parts = [int(p) for p in birth_date.split("-")]
    year = parts[0]
    if len(parts) == 3:
        earliest = latest = dt.date(year, parts[1], parts[2])
    elif len(parts) == 2:
        last_day = calendar.monthrange(year, parts[1])[1]
        earliest, latest = dt.date(year, parts[1], 1), dt.date(year, parts[1], last_day)
    else:
        earliest, latest = dt.date(year, 1, 1), dt.date(year, 12, 31)
    return _age(latest, on), _age(earliest, on)


def _check(birth_date: str, on: dt.date, rule: AgeRange, field: str, code: str) -> None:
    youngest, oldest = age_range(birth_date, on)
    too_young = rule.minimum is not None and oldest < rule.minimum
    too_old = rule.maximum is not None and youngest > rule.maximum
    if not (too_young or too_old):
        return
    age = str(youngest) if youngest == oldest else f"{youngest} or {oldest}"
    what = "target group" if field == "target_group" else "programme"
    # The details let the web form say the same in German (web/plan_forms.py).
    raise Unprocessable(
        f"The person is {age} years old on {on.isoformat()} (born {birth_date}); "
        f"the {what} '{code}' requires {rule.describe()}.",
        code="implausible_age",
        field=field,
        subject=code,
        youngest=youngest,
        oldest=oldest,
        on=on,
        birth_date=birth_date,
        minimum=rule.minimum,
        maximum=rule.maximum,
    )


def check_target_group(birth_date: str, group: str, on: dt.date) -> None:
    """Refuse (422 implausible_age) a target group the person's age on ``on`` contradicts."""
    rule = TARGET_GROUP_AGES.get(group)
    if rule is not None:
        _check(birth_date, on, rule, "target_group", group)


def check_programme(birth_date: str, programme: str, on: dt.date) -> None:
    """Refuse (422 implausible_age) a programme the person's age on its start contradicts."""
    rule = PROGRAMME_AGES.get(programme)
    if rule is not None:
        _check(birth_date, on, rule, "programme", programme)
