"""The canton's decision letter on a cost approval (Verfügung über Kostengutsprache), as PDF.

A formal German letter of the Kanton Aargau, Kantonaler Sozialdienst, to the requesting
unit: the person and case reference, programme, period, requested and approved amount
(Swiss format from ``money.format_chf``, ``CHF 4'800.00``), the decision with its reason,
the date (dd.mm.yyyy) and the legal-remedies notice (Rechtsmittelbelehrung). The wording
of that notice is a template the canton's legal service must confirm before production use.

Built with pikepdf like ``samples.py``: the standard Helvetica fonts in WinAnsiEncoding
cover German (ä ö ü ß, en dash), need no embedded font files, and give the PDF a real
text layer, so the letter is searchable like any other document.
"""

from __future__ import annotations

import datetime as dt
import io
import textwrap
from dataclasses import dataclass
from decimal import Decimal

import pikepdf

from dossier_service.dates import swiss_date, swiss_partial_date
from dossier_service.money import format_chf

#: What the decision says, in the letter's words.
DECISION_TEXT = {
    "approved": "Die Kostengutsprache wird im beantragten Umfang erteilt.",
    "partially_approved": "Die Kostengutsprache wird teilweise erteilt.",
    "rejected": "Das Gesuch um Kostengutsprache wird abgelehnt.",
}
RIGHTS_NOTICE = (
    "Gegen diese Verfügung kann innert 30 Tagen seit Zustellung beim Departement "
    "Gesundheit und Soziales des Kantons Aargau schriftlich Verwaltungsbeschwerde "
    "erhoben werden. Die Beschwerde muss einen Antrag und eine "
    "Begründung enthalten; die angefochtene Verfügung ist beizulegen."
)

_PAGE_WIDTH, _PAGE_HEIGHT = 595, 842  # A4 in points
_LEFT = 70
_TOP = 780
_BOTTOM = 70
_WRAP = 88  # characters per line at 10 pt Helvetica within the margins


@dataclass(frozen=True)
class DecisionFacts:
    """Everything the letter states, gathered before rendering (no ORM objects)."""

    reference: str
    person_name: str
    birth_date: str  # eCH-0044 partial date as stored
    addressee: str
    programme: str
    provider: str
    period_from: dt.date
    period_to: dt.date
    requested_on: dt.date
    amount: Decimal
    approved_amount: Decimal
    decision: str
    reason: str
    decided_on: dt.date
    signed_by: str


def _escape(line: str) -> bytes:
    """A PDF literal string in WinAnsiEncoding (characters outside it become '?')."""
    raw = line.encode("cp1252", "replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


@dataclass(frozen=True)
class _Line:
    text: str
    font: str = "F1"  # F1 regular, F2 bold
    size: int = 10
    space_before: int = 0


def _wrapped(text: str, *, space_before: int = 0) -> list[_Line]:
    """A paragraph in regular type, wrapped; only its first line keeps the space before."""
    lines: list[_Line] = []
    for paragraph in text.splitlines() or [""]:
        for part in textwrap.wrap(paragraph, _WRAP) or [""]:
            lines.append(_Line(part, space_before=space_before if not lines else 0))
    return lines


def _lines(facts: DecisionFacts) -> list[_Line]:
    """The letter, top to bottom."""
    granted = facts.decision != "rejected"
    lines = [
        _Line("Kanton Aargau", "F2", 12),
        _Line("Departement Gesundheit und Soziales"),
        _Line("Kantonaler Sozialdienst"),
        _Line(facts.addressee, space_before=30),
        _Line(f"Aarau, {swiss_date(facts.decided_on)}", space_before=24),
        _Line("Verfügung über Kostengutsprache", "F2", 14, space_before=24),
        _Line(f"Fall {facts.reference}", "F2", 10, space_before=4),
        _Line(
            f"Person: {facts.person_name}, geboren {swiss_partial_date(facts.birth_date)}",
            space_before=14,
        ),
        _Line(f"Programm: {facts.programme}"),
    ]
    if facts.provider:
        lines.append(_Line(f"Anbieter: {facts.provider}"))
    lines += [
        _Line(f"Zeitraum: {swiss_date(facts.period_from)} – {swiss_date(facts.period_to)}"),
        _Line(f"Gesuch vom: {swiss_date(facts.requested_on)}"),
        _Line(f"Beantragter Betrag: CHF {format_chf(facts.amount)}", space_before=10),
        _Line(f"Bewilligter Betrag: CHF {format_chf(facts.approved_amount)}", "F2"),
        _Line("Entscheid", "F2", 11, space_before=16),
        *_wrapped(DECISION_TEXT[facts.decision]),
        _Line("Begründung", "F2", 11, space_before=12),
        *_wrapped(facts.reason or "Die beantragte Massnahme entspricht dem Integrationsplan."),
    ]
    if granted:
        lines += _wrapped(
            "Die Kosten werden bis zum bewilligten Betrag für den genannten Zeitraum "
            "übernommen. Rechnungen sind unter Angabe der Fallnummer an den Kantonalen "
            "Sozialdienst zu richten.",
            space_before=10,
        )
    lines += [
        _Line("Rechtsmittelbelehrung", "F2", 11, space_before=16),
        *_wrapped(RIGHTS_NOTICE),
        _Line("Kantonaler Sozialdienst", space_before=24),
        _Line(facts.signed_by),
    ]
    return lines


def _font(pdf: pikepdf.Pdf, name: str) -> pikepdf.Object:
    return pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font,
            Subtype=pikepdf.Name.Type1,
            BaseFont=pikepdf.Name(f"/{name}"),
            Encoding=pikepdf.Name.WinAnsiEncoding,
        )
    )


def decision_letter(facts: DecisionFacts) -> bytes:
    """Render the decision letter as a PDF (one or more A4 pages)."""
    pdf = pikepdf.new()
    fonts = pikepdf.Dictionary(F1=_font(pdf, "Helvetica"), F2=_font(pdf, "Helvetica-Bold"))
    pages: list[list[bytes]] = [[]]
    y = _TOP
    for line in _lines(facts):
        step = line.space_before + int(line.size * 1.4)
        if y - step < _BOTTOM:
            pages.append([])
            y = _TOP
            step = int(line.size * 1.4)
        y -= step
        pages[-1].append(
            b"BT /%s %d Tf %d %d Td (%s) Tj ET"
            % (line.font.encode(), line.size, _LEFT, y, _escape(line.text))
        )
    total = len(pages)
    for number, ops in enumerate(pages, start=1):
        if total > 1:
            ops.append(
                b"BT /F1 8 Tf %d %d Td (%s) Tj ET"
                % (_LEFT, _BOTTOM - 30, _escape(f"Seite {number} von {total}"))
            )
        page = pikepdf.Dictionary(
            Type=pikepdf.Name.Page,
            MediaBox=[0, 0, _PAGE_WIDTH, _PAGE_HEIGHT],
            Resources=pikepdf.Dictionary(Font=fonts),
            Contents=pdf.make_stream(b"\n".join(ops)),
        )
        pdf.pages.append(pikepdf.Page(page))
    pdf.docinfo["/Title"] = f"Verfügung über Kostengutsprache, Fall {facts.reference}"
    pdf.docinfo["/Author"] = "Kanton Aargau, Kantonaler Sozialdienst"
    pdf.Root.Lang = pikepdf.String("de-CH")
    buffer = io.BytesIO()
    pdf.save(buffer, deterministic_id=True)
    return buffer.getvalue()


def letter_text(data: bytes) -> str:
    """The text of a letter rendered here, line by line (for tests and checks)."""
    lines = []
    with pikepdf.open(io.BytesIO(data)) as pdf:
        for page in pdf.pages:
            for instruction in pikepdf.parse_content_stream(page):
                if (
                    isinstance(instruction, pikepdf.ContentStreamInstruction)
                    and str(instruction.operator) == "Tj"
                ):
                    lines.append(bytes(instruction.operands[0]).decode("cp1252"))
    return "\n".join(lines)
