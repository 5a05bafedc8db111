"""IAS-Kennzahlen: the canton's indicators and case counts, with charts drawn on the server.

Charts are inline SVG built here (no script, no library, no CDN): bars with their numbers
written beside them and a table with the same figures, so they are readable without
colour and by screen readers. The figures come from ``services.indicators`` and
``services.monitoring``, the same functions as the JSON and CSV reports.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from dossier_service.dates import local_today, swiss_date
from dossier_service.http.context import audit_context
from dossier_service.models.process import TARGET_GROUPS
from dossier_service.services import indicators, monitoring
from dossier_service.web.context import container, identity, render, session
from dossier_service.web.i18n import percent

INDICATOR_LABELS: dict[str, Any] = {
    "language_a1_within_3_years": _l("Sprachniveau A1 innert 3 Jahren nach Regelung"),
    "school_language_at_school_entry": _l(
        "Kinder verständigen sich beim Schuleintritt in der Ortssprache"
    ),
    "education_5_years_age_16_25": _l(
        "16–25-Jährige 5 Jahre nach Regelung in postobligatorischer Ausbildung"
    ),
    "labour_market_7_years_adults": _l("Erwachsene 7 Jahre nach Regelung im ersten Arbeitsmarkt"),
    "social_life_7_years": _l(
        "7 Jahre nach Regelung vertraut mit dem Leben in der Schweiz und Kontakte zur Bevölkerung"
    ),
}
TARGET_GROUP_LABELS: dict[str, Any] = {
    "education": _l("Ausbildungsfähige (16–25)"),
    "labour_market": _l("Arbeitsmarktfähige"),
    "social_integration": _l("Soziale Integration"),
    "unassigned": _l("noch nicht zugeteilt"),
}
assert set(TARGET_GROUPS) <= set(TARGET_GROUP_LABELS)

BAR_WIDTH = 420
ROW_HEIGHT = 34
LABEL_WIDTH = 370


def _as_of() -> tuple[dt.date, str | None]:
    """The report day from the form (today by default) and an error if it was unusable."""
    raw = request.args.get("as_of") or ""
    today = local_today()
    if not raw:
        return today, None
    try:
        value = dt.date.fromisoformat(raw)
    except ValueError:
        return today, _("Bitte geben Sie ein gültiges Datum an.")
    if not dt.date(1990, 1, 1) <= value <= dt.date(2200, 12, 31):
        return today, _("Bitte geben Sie ein Datum zwischen 1990 und 2200 an.")
    return value, None


def share_chart(items: list[dict[str, Any]]) -> Markup:
    """Horizontal bars: each indicator's share with a mark at its goal."""
    height = ROW_HEIGHT * len(items) + 10
    title = escape(_("Anteile und Ziele der IAS-Kennzahlen"))
    parts = [
        f'<svg class="chart" viewBox="0 0 {LABEL_WIDTH + BAR_WIDTH + 90} {height}" '
        f'role="img" aria-labelledby="chart-shares-title">'
        f'<title id="chart-shares-title">{title}</title>'
    ]
    for i, item in enumerate(items):
        y = i * ROW_HEIGHT + 5
        share = item["share"] or 0.0
        goal_x = LABEL_WIDTH + BAR_WIDTH * item["target_share"]
        label = INDICATOR_LABELS.get(item["id"], item["label"])
        parts.append(
            f'<text x="0" y="{y + 20}" class="chart-label">{escape(_short(str(label), 40))}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y + 4}" width="{BAR_WIDTH}" height="22" '
            'class="chart-track"/>'
            f'<rect x="{LABEL_WIDTH}" y="{y + 4}" width="{BAR_WIDTH * share:.1f}" height="22" '
            'class="chart-bar"/>'
            f'<line x1="{goal_x:.1f}" x2="{goal_x:.1f}" y1="{y}" y2="{y + 30}" class="chart-goal"/>'
            f'<text x="{LABEL_WIDTH + BAR_WIDTH + 8}" y="{y + 20}" class="chart-value">'
            f"{escape(percent(item['share']))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every text in it is escaped above)


def count_chart(rows: list[tuple[str, int]], title: str, chart_id: str) -> Markup:
    """Horizontal bars of counts with their numbers."""
    top = max([count for _label, count in rows] + [1])
    height = ROW_HEIGHT * len(rows) + 10
    parts = [
        f'<svg class="chart" viewBox="0 0 {LABEL_WIDTH + BAR_WIDTH + 90} {height}" '
        f'role="img" aria-labelledby="{chart_id}-title">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
    ]
    for i, (label, count) in enumerate(rows):
        y = i * ROW_HEIGHT + 5
        parts.append(
            f'<text x="0" y="{y + 20}" class="chart-label">{escape(_short(label, 40))}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y + 4}" width="{BAR_WIDTH * count / top:.1f}" '
            'height="22" class="chart-bar chart-bar-count"/>'
            f'<text x="{LABEL_WIDTH + BAR_WIDTH * count / top + 8:.1f}" y="{y + 20}" '
            f'class="chart-value">{count}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704  (every text in it is escaped above)


def _short(text: str, limit: int) -> str:
    """Cut a label for the chart (the table beside it has the full text)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def ias_page() -> ResponseReturnValue:
    """GET /reports/ias?as_of=: indicators, cases by status, target group and unit, stalls."""
    audit_context("report.read")
    as_of, error = _as_of()
    who = identity()
    db = session()
    report = indicators.ias_report(db, who, as_of)
    stalled = monitoring.stalled_report(db, who, as_of, container().settings.stall_days)
    cases = report["cases"]
    status_rows = [
        (_("offen"), cases["by_status"]["open"]),
        (_("abgeschlossen"), cases["by_status"]["closed"]),
    ]
    group_rows = [
        (str(TARGET_GROUP_LABELS.get(code, code)), count)
        for code, count in cases["by_target_group"].items()
    ]
    unit_rows = [(row["unit"]["name"], row["total"]) for row in cases["by_unit"]]
    return render(
        "reports/ias.html",
        status=422 if error else 200,
        error=error,
        as_of=as_of,
        report=report,
        stalled=stalled,
        indicator_labels=INDICATOR_LABELS,
        target_group_labels=TARGET_GROUP_LABELS,
        share_svg=share_chart(report["indicators"]),
        status_svg=count_chart(status_rows, _("Fälle nach Status"), "chart-status"),
        group_svg=count_chart(group_rows, _("Fälle nach Zielgruppe"), "chart-groups"),
        unit_svg=count_chart(unit_rows, _("Fälle nach zuständiger Stelle"), "chart-units"),
        as_of_label=swiss_date(as_of),
    )


def ias_csv() -> ResponseReturnValue:
    """GET /reports/ias.csv?as_of=: the same report as a spreadsheet file."""
    audit_context("report.read")
    as_of, _error = _as_of()
    db = session()
    report = indicators.ias_report(db, identity(), as_of)
    return Response(
        indicators.ias_csv(report),
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="ias-indikatoren-{as_of}.csv"',
            "Cache-Control": "private, no-store",
        },
    )


def register(bp: Blueprint) -> None:
    """Add the report routes."""
    bp.add_url_rule("/reports/ias", "ias_report", ias_page)
    bp.add_url_rule("/reports/ias.csv", "ias_csv", ias_csv)
