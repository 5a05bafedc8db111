"""The canton's decision letter on a cost approval (Verfügung über Kostengutsprache), as PDF.

A formal German letter of the Kanton Aargau, Kantonaler Sozialdienst, to the requesting
unit: the person and case reference, programme, period, requested and approved amount
(Swiss format from ``money.format_chf``, ``CHF 4'800.00``), the decision with its reason,
the date (dd.mm.yyyy) and the legal-remedies notice (Rechtsmittelbelehrung). The wording
of that notice is a template the canton's legal service must confirm before production use.

The letter is the Jinja template ``templates/letters/cost_approval_decision.html``
(autoescaped: names and reasons are data, never markup) rendered by WeasyPrint to PDF/A-2b,
the archival form, with Debian's fonts embedded (DejaVu Sans; Noto Sans Arabic and Noto Sans
Ethiopic for names in those scripts). A refugee's name keeps every letter (Şahin Güneş,
Đorđević, Nguyễn Thị Ánh, Arabic or Ge'ez script) in the printed letter and in its text
layer, so the filed decision is searchable like any other document.
"""

from __future__ import annotations

import datetime as dt
import io
import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pypdf

from dossier_service.dates import swiss_date, swiss_partial_date
from dossier_service.money import format_chf
from dossier_service.services import templates

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

DEFAULT_REASON = "Die beantragte Massnahme entspricht dem Integrationsplan."
TEMPLATE = "letters/cost_approval_decision.html"
#: The archival profile: PDF/A-2b (ISO 19005-2, visual appearance, fonts embedded).
PDF_VARIANT = "pdf/a-2b"
#: The only files rendering may read: the fonts ``@font-face { src: local(...) }`` names.
FONT_SUFFIXES = (".ttf", ".otf", ".ttc")


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


#: WeasyPrint does not promise thread safety (Pango and fontconfig state is shared) and the
#: web workers run threads: one letter at a time per process (a letter takes well under 1 s).
_render_lock = threading.Lock()


def letter_html(facts: DecisionFacts) -> str:
    """The letter as HTML (the template filled in, every value escaped)."""
    reason = facts.reason or DEFAULT_REASON
    context: dict[str, Any] = {
        "facts": facts,
        "decided_on": swiss_date(facts.decided_on),
        "birth_date": swiss_partial_date(facts.birth_date),
        "period_from": swiss_date(facts.period_from),
        "period_to": swiss_date(facts.period_to),
        "requested_on": swiss_date(facts.requested_on),
        "amount": format_chf(facts.amount),
        "approved_amount": format_chf(facts.approved_amount),
        "decision_text": DECISION_TEXT[facts.decision],
        "reason_paragraphs": [line for line in reason.splitlines() if line.strip()] or [reason],
        "granted": facts.decision != "rejected",
        "rights_notice": RIGHTS_NOTICE,
    }
    return templates.environment().get_template(TEMPLATE).render(context)


def decision_letter(facts: DecisionFacts) -> bytes:
    """Render the decision letter as a PDF/A-2b (one or more A4 pages, fonts embedded)."""
    # Imported on first use, not at start: WeasyPrint loads Pango and fontconfig through cffi,
    # which only letters need, and which should not be initialised before a worker forks.
    import weasyprint

    class FontsOnly(weasyprint.URLFetcher):
        """Reads the installed font files the template names, and nothing else."""

        def fetch(self, url: str, headers: Any = None) -> Any:
            """Fetch a local font file; refuse every other URL (no server, no other file)."""
            if url.startswith("file://") and url.lower().endswith(FONT_SUFFIXES):
                return super().fetch(url, headers)
            raise ValueError(f"letters fetch nothing but font files: {url}")

    # Should a value ever smuggle a URL into the page, WeasyPrint logs the refusal and leaves
    # the resource out instead of reading a local file or calling a server.
    fetcher = FontsOnly(allowed_protocols=("file",))
    html = weasyprint.HTML(string=letter_html(facts), base_url=None, url_fetcher=fetcher)
    with _render_lock:
        pdf = html.write_pdf(pdf_variant=PDF_VARIANT, uncompressed_pdf=False)
    assert pdf is not None
    return bytes(pdf)


def letter_text(data: bytes) -> str:
    """The text layer of a letter rendered here, page by page (for tests and checks)."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)
