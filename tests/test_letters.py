"""Generated letters keep every letter of a name, are PDF/A-2b and embed their fonts."""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import unicodedata
import zipfile
from decimal import Decimal
from typing import Any

import pypdf
import pytest
from fontTools.ttLib import TTFont
from pypdf.generic import DictionaryObject

from dossier_service.services import letters
from dossier_service.services.letters import DecisionFacts, decision_letter, letter_text
from tests.factories import held_by, new_case, request_approval

API = "/api/v1"

#: Names as refugees' case files carry them, one per script the letter must keep.
NAMES = {
    "turkish": ("Şahin", "Güneş"),
    "serbo_croatian": ("Đorđe", "Đorđević"),
    "vietnamese": ("Nguyễn Thị", "Ánh"),
    "arabic": ("محمد", "عبد الله"),
    "tigrinya": ("ሰምሃር", "ኃይለ"),
}
INJECTION = '<b>Eve</b> & <script>alert("x")</script>'


def facts(person_name: str = "Semhar Haile", **changes: Any) -> DecisionFacts:
    """A partially approved decision about the given person."""
    values: dict[str, Any] = {
        "reference": "IAS-2026-000123",
        "person_name": person_name,
        "birth_date": "1998-03",
        "addressee": "Gemeinde Aarau",
        "programme": "Integrationskurs Grundkompetenzen 1 (IKG1)",
        "provider": "",
        "period_from": dt.date(2026, 2, 1),
        "period_to": dt.date(2026, 6, 30),
        "requested_on": dt.date(2026, 1, 15),
        "amount": Decimal("4800.00"),
        "approved_amount": Decimal("3000.00"),
        "decision": "partially_approved",
        "reason": "Nur die Kurskosten.",
        "decided_on": dt.date(2026, 2, 2),
        "signed_by": "Anna Muster",
    }
    values.update(changes)
    return DecisionFacts(**values)


def _plain(text: str) -> str:
    """Text as compared: NFC, without the bidi embedding marks some extractors add."""
    return unicodedata.normalize("NFC", re.sub("[\u202a-\u202e\u2066-\u2069]", "", text))


@pytest.mark.parametrize("script", sorted(NAMES))
def test_every_letter_of_a_name_reaches_the_text_layer(script):
    given, family = NAMES[script]
    name = f"{given} {family}"
    text = _plain(letter_text(decision_letter(facts(name))))
    assert name in text, (script, text)
    if script != "arabic":  # right-to-left runs may be extracted apart from their sentence
        assert f"Person: {name}, geboren 03.1998" in text


def _fonts(resources: DictionaryObject) -> list[DictionaryObject]:
    """Every font a page uses, including those of its form XObjects."""
    found = [font.get_object() for font in resources.get("/Font", {}).values()]
    for xobject in resources.get("/XObject", {}).values():
        inner = xobject.get_object().get("/Resources")
        if inner is not None:
            found += _fonts(inner.get_object())
    return found


def test_the_letter_is_pdf_a_2b_with_every_font_embedded():
    names = ", ".join(" ".join(parts) for parts in NAMES.values())
    reader = pypdf.PdfReader(io.BytesIO(decision_letter(facts(names))))
    catalog = reader.trailer["/Root"]
    xmp = catalog["/Metadata"].get_object().get_data().decode("utf-8")
    assert re.search(r'pdfaid:part(="|>)2', xmp), xmp
    assert re.search(r'pdfaid:conformance(="|>)B', xmp), xmp
    [intent] = catalog["/OutputIntents"]
    assert intent.get_object()["/S"] == "/GTS_PDFA1"
    assert "/DestOutputProfile" in intent.get_object()
    fonts = [font for page in reader.pages for font in _fonts(page["/Resources"].get_object())]
    assert fonts
    embedded = set()
    for font in fonts:
        descendants = font.get("/DescendantFonts")
        for leaf in [d.get_object() for d in descendants] if descendants else [font]:
            descriptor = leaf["/FontDescriptor"].get_object()
            files = {"/FontFile", "/FontFile2", "/FontFile3"} & set(descriptor)
            assert files, leaf["/BaseFont"]
            data = descriptor[files.pop()].get_object().get_data()
            embedded.add(TTFont(io.BytesIO(data))["name"].getDebugName(1))
        # A ToUnicode map is what lets the text layer give the name back.
        assert "/ToUnicode" in font, font["/BaseFont"]
    # Debian's fonts: DejaVu for Latin, Noto for the Arabic and Ge'ez names.
    assert {"DejaVu Sans", "Noto Sans Arabic", "Noto Sans Ethiopic"} <= embedded, embedded


def test_markup_in_a_name_is_text_not_markup():
    html = letters.letter_html(facts(INJECTION, reason=INJECTION, provider=INJECTION))
    assert "<script>" not in html and "<b>Eve" not in html
    assert "&lt;b&gt;Eve&lt;/b&gt; &amp; &lt;script&gt;" in html
    text = letter_text(decision_letter(facts(INJECTION, reason=INJECTION)))
    assert f"Person: {INJECTION}, geboren 03.1998" in text
    assert text.count(INJECTION) == 2


def test_a_decided_request_files_the_name_as_written(client, world):
    """Through the API: the filed decision letter names Şahin Güneş, not ?ahin Güne?."""
    cid = held_by(client, world, given_names="Şahin", family_name="Güneş Đorđević")
    approval = request_approval(client, world, cid).get_json()
    decided = client.post(
        f"{API}/cost-approvals/{approval['id']}/decision",
        json={"decision": "approved"},
        headers=world.auth("canton"),
    )
    assert decided.status_code == 200, decided.get_json()
    document = decided.get_json()["decision_document_id"]
    pdf = client.get(f"{API}/documents/{document}/content", headers=world.auth("aarau")).data
    assert "Person: Şahin Güneş Đorđević, geboren 03.2006" in letter_text(pdf)


def test_the_disclosure_page_keeps_names_and_escapes_markup(client, world):
    """index.html of a disclosure: every script as written, markup in a name only as text."""
    given = " ".join(given for given, _ in NAMES.values())
    family = " ".join(family for _, family in NAMES.values())
    case = new_case(client, world, given_names=given, family_name=f"{family} {INJECTION}")
    response = client.get(f"{API}/cases/{case['id']}/disclosure", headers=world.auth("canton"))
    assert response.status_code == 200
    page = zipfile.ZipFile(io.BytesIO(response.data)).read("index.html").decode("utf-8")
    assert f"<td>{given}</td>" in page
    assert "&lt;b&gt;Eve&lt;/b&gt; &amp; &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "<script>" not in page and "<b>Eve" not in page
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


def test_rendering_fetches_nothing_but_fonts(monkeypatch, tmp_path, caplog):
    """Were a file or URL ever to reach the page, rendering would leave it out unread."""
    secret = tmp_path / "secret.css"
    secret.write_text("body { color: red }")
    html = letters.letter_html(facts())
    monkeypatch.setattr(
        letters,
        "letter_html",
        lambda _facts: html.replace("</head>", f'<link rel="stylesheet" href="file://{secret}">'),
    )
    # WeasyPrint reports a refused resource as a warning; no earlier logging set-up may hide it.
    monkeypatch.setattr(logging.getLogger("weasyprint"), "disabled", False)
    caplog.set_level(logging.WARNING, logger="weasyprint")
    pdf = decision_letter(facts())
    assert "Verfügung über Kostengutsprache" in letter_text(pdf)
    refused = [r.getMessage() for r in caplog.records if "secret.css" in r.getMessage()]
    assert refused and all("letters fetch nothing but font files" in m for m in refused), refused
