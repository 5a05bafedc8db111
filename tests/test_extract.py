"""Tests for text extraction from untrusted files: PDF (text layer and OCR), DOCX, images, text."""

from __future__ import annotations

import io
import json
import os
import random
import struct
import subprocess
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import docx
import pikepdf
import psutil
import pytest
from docx.oxml import parse_xml
from PIL import Image

import workers.extract as extract_package
from dossier_service.files.inspect import MAX_IMAGE_PIXELS, inspect_file
from dossier_service.files.sniff import DOCX, JPEG, PDF, PNG, TEXT, TIFF
from dossier_service.samples import make_pdf
from dossier_service.sandbox import SandboxOutcome, SoftTimeout, run_in_sandbox
from tests.sample_files import declared_png, image_only_pdf, scanned_page
from workers.extract import Extraction, extract_text
from workers.extract import pdf as pdf_module
from workers.extract.image import OcrError, run_tesseract
from workers.extract.pdf import DAMAGED_REASON, PASSWORD_REASON, extract_pdf
from workers.extract.text import TextCollector, decode_plain, extract_plain, normalize_text

# --- The corpus of real PDFs -------------------------------------------------------


#: A copy of the public py-pdf sample files (CC-BY-SA-4.0), see tests/data/README.md.
CORPUS = Path(__file__).resolve().parent / "data" / "py-pdf-sample-files"
GROUND_TRUTH: list[dict[str, Any]] = json.loads((CORPUS / "files.json").read_text())["data"]
# files.json lists GeoTopo.pdf, which the corpus does not ship (only its compressed twin).
CORPUS_ENTRIES = [e for e in GROUND_TRUTH if (CORPUS / e["path"]).is_file()]
# qpdf, pypdf and poppler all fail on this one: its page tree is broken ("/Kids" missing).
UNREADABLE = {"017-unreadable-meta-data/unreadablemetadata.pdf"}


def corpus(relative: str) -> Path:
    """Path of a corpus file."""
    return CORPUS / relative


def test_the_corpus_is_there() -> None:
    """The corpus tests below must not pass vacuously."""
    assert CORPUS.is_dir(), "tests/data/py-pdf-sample-files missing"
    assert len(CORPUS_ENTRIES) >= 30


@pytest.mark.slow
@pytest.mark.parametrize("entry", CORPUS_ENTRIES, ids=lambda e: e["path"])
def test_every_corpus_pdf_extracts_and_page_count_matches(entry: dict[str, Any]) -> None:
    """No corpus PDF crashes the extractor; readable ones report files.json's page count."""
    result = extract_text(corpus(entry["path"]), PDF)
    assert isinstance(result, Extraction)
    if entry["encrypted"]:
        assert (result.ok, result.reason) == (False, PASSWORD_REASON)
    elif entry["path"] in UNREADABLE:
        assert (result.ok, result.reason) == (False, DAMAGED_REASON)
    else:
        assert result.ok, result.reason
        assert result.reason is None
        assert result.pages == entry["pages"]
        assert result.chars == len(result.text)
        assert result.pages is not None and result.ocr_pages <= result.pages
        assert "\x00" not in result.text


@pytest.mark.parametrize(
    ("relative", "words"),
    [
        ("001-trivial/minimal-document.pdf", ["Lorem ipsum dolor", "consetetur sadipscing"]),
        (
            "002-trivial-libre-office-writer/002-trivial-libre-office-writer.pdf",
            ["Lorem ipsum", "gubergren"],
        ),
        ("004-pdflatex-4-pages/pdflatex-4-pages.pdf", ["here is some text without a meaning"]),
        ("009-pdflatex-geotopo/GeoTopo-komprimiert.pdf", ["Geometrie und Topologie", "Vorwort"]),
        ("011-google-doc-document/google-doc-document.pdf", ["Beautiful is better than ugly"]),
        ("013-reportlab-overlay/reportlab-overlay.pdf", ["Fingerprint: asdfSa2123"]),
        ("021-pdfa/crazyones-pdfa.pdf", ["The Crazy Ones", "troublemakers"]),
        ("026-latex-multicolumn/multicolumn.pdf", ["Two-Column Document"]),
    ],
)
def test_text_pdfs_yield_their_words_from_the_text_layer(relative: str, words: list[str]) -> None:
    """Text PDFs are read from their text layer, without OCR."""
    result = extract_text(corpus(relative), PDF)
    assert result.ok, result.reason
    assert (result.method, result.ocr_pages) == ("text-layer", 0)
    for word in words:
        assert word in result.text


def test_german_text_comes_out_in_nfc() -> None:
    """ "Einführung" from the German script is one precomposed ü, as a search expects."""
    result = extract_text(corpus("009-pdflatex-geotopo/GeoTopo-komprimiert.pdf"), PDF)
    assert "Einführung" in result.text
    assert result.pages == 117
    assert result.text == normalize_text(result.text)


def test_password_protected_pdf_is_refused_with_the_password_reason() -> None:
    """A PDF that needs a password ends as ok=False with a person-readable reason."""
    result = extract_text(
        corpus("005-libreoffice-writer-password/libreoffice-writer-password.pdf"), PDF
    )
    assert result.ok is False
    assert result.reason == "the PDF is password-protected; its text cannot be read"
    assert (result.text, result.chars) == ("", 0)


def test_pdf_encrypted_with_an_empty_user_password_is_read(tmp_path: Path) -> None:
    """Owner-password-only encryption (print/copy restrictions) does not hide the text."""
    source = pikepdf.open(io.BytesIO(make_pdf("Verfügung", ["Die Kostengutsprache gilt."])))
    target = tmp_path / "restricted.pdf"
    source.save(target, encryption=pikepdf.Encryption(owner="geheim", user="", aes=True))
    result = extract_text(target, PDF)
    assert result.ok, result.reason
    assert "Kostengutsprache" in result.text


# --- Scanned PDFs and images (OCR) --------------------------------------------------------

SCAN_LINES = [
    "Kanton Aargau, Integrationsagenda Schweiz",
    "Gesuch um Kostengutsprache für den Deutschkurs B1",
    "Der Integrationsplan wurde mit dem Sozialdienst besprochen.",
    "Aarau, 12. März 2024",
]
SECOND_PAGE_LINES = [
    "Beilage: Arbeitsbestätigung",
    "Die Teilnehmerin besucht den Integrationskurs regelmässig.",
]


def has_words(text: str, *words: str) -> bool:
    """Case-insensitive containment of every word."""
    lowered = text.lower()
    return all(word.lower() in lowered for word in words)


@pytest.fixture(scope="module")
def scanned_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-page image-only PDF with German text."""
    path = tmp_path_factory.mktemp("scan") / "scan.pdf"
    path.write_bytes(image_only_pdf([scanned_page(SCAN_LINES), scanned_page(SECOND_PAGE_LINES)]))
    return path


def test_scanned_pdf_has_no_text_layer(scanned_pdf: Path) -> None:
    """Sanity check of the fixture: without OCR there is nothing to read."""
    result = extract_text(scanned_pdf, PDF, ocr=False)
    assert result.ok
    assert (result.text, result.ocr_pages, result.method) == ("", 0, "text-layer")
    assert result.warnings == ["2 pages without a text layer were not OCR'd: OCR is switched off"]


def test_scanned_pdf_is_read_by_ocr(scanned_pdf: Path) -> None:
    """Every page of an image-only PDF is rendered and OCR'd with the German model."""
    result = extract_text(scanned_pdf, PDF)
    assert result.ok, result.reason
    assert (result.pages, result.ocr_pages, result.method) == (2, 2, "ocr")
    assert has_words(result.text, "Kostengutsprache", "Integrationsplan", "Sozialdienst")
    assert has_words(result.text, "Integrationskurs")
    # Page order is kept.
    assert result.text.lower().index("kostengutsprache") < result.text.lower().index("beilage")
    assert result.warnings == []


def test_ocr_is_bounded_by_max_ocr_pages(scanned_pdf: Path) -> None:
    """Only max_ocr_pages pages are OCR'd, and the result says so."""
    result = extract_text(scanned_pdf, PDF, max_ocr_pages=1)
    assert result.ok
    assert result.ocr_pages == 1
    assert has_words(result.text, "Kostengutsprache")
    assert not has_words(result.text, "Integrationskurs")
    assert result.warnings == ["only 1 of 2 pages without a text layer were OCR'd (the limit is 1)"]


def test_pdf_mixing_text_and_scanned_pages_uses_both(tmp_path: Path) -> None:
    """A text page is read from its text layer, a scanned page by OCR: method "mixed"."""
    mixed = pikepdf.open(io.BytesIO(make_pdf("Verlaufsbericht", ["Zielvereinbarung erreicht."])))
    scan = pikepdf.open(io.BytesIO(image_only_pdf([scanned_page(SCAN_LINES)])))
    mixed.pages.extend(scan.pages)
    path = tmp_path / "mixed.pdf"
    mixed.save(path)
    result = extract_text(path, PDF)
    assert result.ok, result.reason
    assert (result.pages, result.ocr_pages, result.method) == (2, 1, "mixed")
    assert "Zielvereinbarung erreicht." in result.text
    assert has_words(result.text, "Kostengutsprache", "Integrationsplan")


def test_scan_with_a_stamp_in_its_text_layer_is_still_ocrd(tmp_path: Path) -> None:
    """A short text layer over a page-sized image (a scanner's stamp) does not stop OCR."""
    scan = pikepdf.open(io.BytesIO(image_only_pdf([scanned_page(SCAN_LINES)])))
    page = scan.pages[0]
    font = scan.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica
        )
    )
    page.obj.Resources.Font = pikepdf.Dictionary(F9=font)
    page.contents_add(
        scan.make_stream(b"BT /F9 8 Tf 20 20 Td (Eingang 14.03.2024 Gemeinde Aarau) Tj ET"),
        prepend=False,
    )
    path = tmp_path / "stamped.pdf"
    scan.save(path)
    result = extract_text(path, PDF)
    assert result.ok
    assert result.ocr_pages == 1
    assert "Eingang 14.03.2024 Gemeinde Aarau" in result.text
    assert has_words(result.text, "Kostengutsprache")


def test_embedded_images_are_ocrd_when_pages_cannot_be_rendered(scanned_pdf: Path) -> None:
    """Without pdftoppm the page's own images are decoded by pikepdf and OCR'd."""
    job = {
        "path": str(scanned_pdf),
        "ocr": True,
        "languages": "deu+eng",
        "max_ocr_pages": 200,
        "max_chars": 5_000_000,
        "pdftoppm": "",  # switched off
    }
    record = extract_pdf(job)
    assert record["ok"] and record["ocr_pages"] == 2
    assert has_words(record["text"], "Kostengutsprache", "Integrationskurs")


def test_missing_tesseract_leaves_the_text_layer_and_says_why(scanned_pdf: Path) -> None:
    """Without Tesseract the PDF is still read (no text here), with a warning, not a failure."""
    job = {
        "path": str(scanned_pdf),
        "ocr": True,
        "languages": "deu+eng",
        "max_ocr_pages": 200,
        "max_chars": 5_000_000,
        "tesseract": "",  # not installed
    }
    record = extract_pdf(job)
    assert (record["ok"], record["text"], record["ocr_pages"]) == (True, "", 0)
    assert record["warnings"] == [
        "2 pages without a text layer were not OCR'd: Tesseract is not installed"
    ]


def test_missing_ocr_language_is_reported_once(tmp_path: Path) -> None:
    """An OCR language without installed data gives one clear warning, not a crash."""
    path = tmp_path / "two.tif"
    page = scanned_page(SCAN_LINES).convert("1")
    page.save(path, save_all=True, append_images=[page], compression="group4")
    result = extract_text(path, TIFF, ocr_languages="xyz")
    assert result.ok
    assert (result.text, result.ocr_pages, result.pages) == ("", 0, 2)
    assert result.warnings == ["the OCR language data 'xyz' is not installed"]


def test_ocr_stopped_by_the_soft_deadline_keeps_the_pages_done(
    scanned_pdf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When time runs out during OCR, the pages already read are returned with a warning."""
    calls: list[int] = []
    real = pdf_module.run_tesseract

    def tesseract_then_deadline(image: bytes, **kwargs: Any) -> str:
        calls.append(1)
        if len(calls) == 2:
            raise SoftTimeout  # what the sandbox's SIGALRM handler raises
        return real(image, **kwargs)

    monkeypatch.setattr(pdf_module, "run_tesseract", tesseract_then_deadline)
    job = {
        "path": str(scanned_pdf),
        "ocr": True,
        "languages": "deu+eng",
        "max_ocr_pages": 200,
        "max_chars": 5_000_000,
    }
    record = extract_pdf(job)
    assert record["ok"] is True
    assert (record["ocr_pages"], record["method"]) == (1, "mixed")
    assert has_words(record["text"], "Kostengutsprache")
    assert record["warnings"] == ["OCR stopped after 1 of 2 pages: the time limit was reached"]


def test_png_scan_is_ocrd(tmp_path: Path) -> None:
    """A PNG with German text comes out via OCR."""
    path = tmp_path / "scan.png"
    scanned_page(SCAN_LINES).save(path, dpi=(200, 200))
    result = extract_text(path, PNG)
    assert result.ok, result.reason
    assert (result.method, result.pages, result.ocr_pages) == ("image-ocr", 1, 1)
    assert has_words(result.text, "Kostengutsprache", "Integrationsplan", "Sozialdienst")


def test_jpeg_photo_stored_sideways_is_turned_upright_before_ocr(tmp_path: Path) -> None:
    """A phone photo stored rotated, with an EXIF orientation tag, is OCR'd upright."""
    sideways = scanned_page(SCAN_LINES).rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    path = tmp_path / "photo.jpg"
    sideways.save(path, "JPEG", quality=90, exif=exif)
    result = extract_text(path, JPEG)
    assert result.ok, result.reason
    assert has_words(result.text, "Kostengutsprache", "Integrationsplan")


def test_multi_page_tiff_is_ocrd_page_by_page(tmp_path: Path) -> None:
    """Every page of a multi-page TIFF is OCR'd, in order."""
    path = tmp_path / "fax.tif"
    first = scanned_page(SCAN_LINES).convert("1")
    first.save(
        path,
        save_all=True,
        append_images=[scanned_page(SECOND_PAGE_LINES).convert("1")],
        compression="group4",
        dpi=(200, 200),
    )
    result = extract_text(path, TIFF)
    assert result.ok, result.reason
    assert (result.pages, result.ocr_pages) == (2, 2)
    assert has_words(result.text, "Kostengutsprache", "Integrationskurs")
    assert result.text.lower().index("kostengutsprache") < result.text.lower().index("beilage")


def _patch_second_tiff_frame_size(data: bytes, width: int, height: int) -> bytes:
    """Make the second IFD of a little-endian TIFF declare another size (a hidden bomb)."""
    buf = bytearray(data)
    assert buf[:2] == b"II"
    first = struct.unpack_from("<I", buf, 4)[0]
    count = struct.unpack_from("<H", buf, first)[0]
    second = struct.unpack_from("<I", buf, first + 2 + 12 * count)[0]
    count = struct.unpack_from("<H", buf, second)[0]
    for i in range(count):
        entry = second + 2 + 12 * i
        tag, kind = struct.unpack_from("<HH", buf, entry)
        if tag in (256, 257):
            fmt = "<H" if kind == 3 else "<I"
            struct.pack_into(fmt, buf, entry + 8, width if tag == 256 else height)
    return bytes(buf)


def test_tiff_bomb_in_a_later_page_is_skipped(tmp_path: Path) -> None:
    """The header check sees page 1 only; a huge page 2 is skipped, page 1 still read."""
    buffer = io.BytesIO()
    scanned_page(SCAN_LINES).convert("1").save(
        buffer,
        "TIFF",
        save_all=True,
        append_images=[Image.new("1", (64, 64), 1)],
        compression="group4",
    )
    path = tmp_path / "bomb.tif"
    path.write_bytes(_patch_second_tiff_frame_size(buffer.getvalue(), 60_000, 60_000))
    result = extract_text(path, TIFF)
    assert result.ok, result.reason
    assert (result.pages, result.ocr_pages) == (2, 1)
    assert has_words(result.text, "Kostengutsprache")
    assert result.warnings == ["page 2 of the image is too large and was skipped"]


def test_truncated_png_is_refused_as_damaged(tmp_path: Path) -> None:
    """A PNG cut off in its image data cannot be decoded: ok=False, not empty success."""
    buffer = io.BytesIO()
    scanned_page(SCAN_LINES).save(buffer, "PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    result = extract_text(path, PNG)
    assert (result.ok, result.reason) == (False, "the PNG image is damaged or incomplete")


def test_decompression_bomb_png_is_refused_quickly_from_its_header(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    """A PNG declaring 4 gigapixels is refused without decoding anything (no child)."""
    path = tmp_path / "bomb.png"
    path.write_bytes(declared_png(65_536, 65_536))
    started = time.monotonic()
    result = extract_text(path, PNG)
    assert time.monotonic() - started < 1.0
    assert result.ok is False
    assert result.reason is not None and result.reason.startswith("the image is too large")
    assert "65536 × 65536" in result.reason
    assert spawned == []


def test_one_pixel_limit_for_upload_and_extraction(tmp_path: Path) -> None:
    """10,000 × 10,000 pixels pass both the upload inspection and the extraction's header
    check; one row more is refused by both, for the same reason, without decoding."""
    assert MAX_IMAGE_PIXELS == 100_000_000
    at_limit = tmp_path / "limit.png"
    at_limit.write_bytes(declared_png(10_000, 10_000))
    over = tmp_path / "over.png"
    over.write_bytes(declared_png(10_000, 10_001))
    reason = "the image is too large (10000 × 10001 pixels; the limit is 100 million)"

    accepted = inspect_file(at_limit, PNG)
    assert (accepted.ok, accepted.flags["width"], accepted.flags["height"]) == (
        True,
        10_000,
        10_000,
    )
    refused = inspect_file(over, PNG)
    assert (refused.ok, refused.reason) == (False, reason)

    result = extract_text(over, PNG)
    assert (result.ok, result.reason) == (False, reason)


# --- DOCX ---------------------------------------------------------------------------------

_W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_MC_NS = "http://schemas.openxmlformats.org/markup-compatibility/2006"


def _rich_docx(path: Path) -> None:
    """A DOCX with text in headers, footers, table cells, merged and nested cells, etc."""
    document = docx.Document()
    section = document.sections[0]
    section.header.paragraphs[0].text = "Kopfzeile Dossiernummer AG-2024-0815"
    section.footer.paragraphs[0].text = "Fusszeile Vertraulichkeitsvermerk"
    intro = document.add_paragraph("Einleitung zum Fallverlauf")
    document.add_comment(intro.runs, text="Kommentar Rückfrage Sozialdienst", author="R. Keller")

    table = document.add_table(rows=2, cols=3)
    table.cell(0, 0).text = "Leistung"
    table.cell(0, 1).text = "Kostengutsprache"
    table.cell(0, 2).text = "Betrag"
    table.cell(1, 0).merge(table.cell(1, 1)).text = "Waagrecht verbunden"
    nested = table.cell(1, 2).add_table(rows=1, cols=1)
    nested.cell(0, 0).text = "Verschachtelte Zelle"
    vertical = document.add_table(rows=2, cols=2)
    vertical.cell(0, 0).merge(vertical.cell(1, 0)).text = "Senkrecht verbunden"
    vertical.cell(0, 1).text = "oben"
    vertical.cell(1, 1).text = "unten"

    revised = document.add_paragraph("Aktueller Betrag 500 CHF")
    revised._p.append(
        parse_xml(
            f'<w:del xmlns:w="{_W_NS}" w:id="9" w:author="x">'
            "<w:r><w:delText>Gestrichener Betrag</w:delText></w:r></w:del>"
        )
    )
    boxed = document.add_paragraph("Absatz mit Textfeld")
    box = "<w:txbxContent><w:p><w:r><w:t>Textfeld Inhalt</w:t></w:r></w:p></w:txbxContent>"
    boxed._p.append(
        parse_xml(
            f'<w:r xmlns:w="{_W_NS}" xmlns:mc="{_MC_NS}"><mc:AlternateContent>'
            f'<mc:Choice Requires="wps"><w:drawing>{box}</w:drawing></mc:Choice>'
            f"<mc:Fallback><w:pict>{box}</w:pict></mc:Fallback>"
            "</mc:AlternateContent></w:r>"
        )
    )
    document.add_paragraph("Schlussbemerkung")

    appendix = document.add_section()
    appendix.header.is_linked_to_previous = False
    appendix.header.paragraphs[0].text = "Anhang Kopfzeile"
    document.add_paragraph("Anhangtext")
    document.save(str(path))


@pytest.fixture(scope="module")
def rich_docx_result(tmp_path_factory: pytest.TempPathFactory) -> Extraction:
    """The extraction of the rich DOCX (built once)."""
    path = tmp_path_factory.mktemp("docx") / "rich.docx"
    _rich_docx(path)
    return extract_text(path, DOCX)


def test_docx_keyword_in_a_table_cell_is_found(rich_docx_result: Extraction) -> None:
    """Table cells, including a table nested in a cell, are read."""
    assert rich_docx_result.ok, rich_docx_result.reason
    assert rich_docx_result.method == "docx"
    assert "Kostengutsprache" in rich_docx_result.text
    assert "Verschachtelte Zelle" in rich_docx_result.text


def test_docx_header_and_footer_text_is_found(rich_docx_result: Extraction) -> None:
    """Headers and footers of every section are read, a shared one only once."""
    text = rich_docx_result.text
    assert "Kopfzeile Dossiernummer AG-2024-0815" in text
    assert "Anhang Kopfzeile" in text
    assert text.count("Fusszeile Vertraulichkeitsvermerk") == 1


def test_docx_merged_cells_text_and_text_boxes_appear_once(rich_docx_result: Extraction) -> None:
    """A merged cell is one cell; a text box stored twice (DrawingML and VML) is read once."""
    text = rich_docx_result.text
    assert text.count("Waagrecht verbunden") == 1
    assert text.count("Senkrecht verbunden") == 1
    assert text.count("Textfeld Inhalt") == 1


def test_docx_comments_are_read_and_deleted_revisions_are_not(
    rich_docx_result: Extraction,
) -> None:
    """Comments are text of the document; tracked deletions are no longer its text."""
    assert "Kommentar Rückfrage Sozialdienst" in rich_docx_result.text
    assert "Aktueller Betrag 500 CHF" in rich_docx_result.text
    assert "Gestrichener" not in rich_docx_result.text


def test_docx_text_is_in_document_order(rich_docx_result: Extraction) -> None:
    """Headers first, then the body in order, then notes and comments, footers last."""
    text = rich_docx_result.text
    order = [
        "Kopfzeile Dossiernummer",
        "Anhang Kopfzeile",
        "Einleitung zum Fallverlauf",
        "Leistung",
        "Kostengutsprache",
        "Waagrecht verbunden",
        "Senkrecht verbunden",
        "Aktueller Betrag",
        "Absatz mit Textfeld",
        "Textfeld Inhalt",
        "Schlussbemerkung",
        "Anhangtext",
        "Kommentar Rückfrage",
        "Fusszeile Vertraulichkeitsvermerk",
    ]
    positions = [text.index(word) for word in order]
    assert positions == sorted(positions)


def test_docx_zip_bomb_is_refused_before_parsing(tmp_path: Path) -> None:
    """A DOCX with an entry compressed 1000:1 is refused with sniff.py's reason."""
    source = tmp_path / "plain.docx"
    docx.Document().save(str(source))
    bomb = tmp_path / "bomb.docx"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item))
        dst.writestr("word/media/filler.bin", b"\x00" * (4 * 1024 * 1024))
    result = extract_text(bomb, DOCX)
    assert result.ok is False
    assert result.reason == (
        "the ZIP container holds an entry compressed more than 200:1 (possible zip bomb)"
    )


def test_docx_with_broken_xml_is_refused_as_damaged(tmp_path: Path) -> None:
    """A sound container whose main part is not XML ends as ok=False, not as a crash."""
    source = tmp_path / "plain.docx"
    docx.Document().save(str(source))
    broken = tmp_path / "broken.docx"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "word/document.xml":
                data = data[: len(data) // 2]
            dst.writestr(item, data)
    result = extract_text(broken, DOCX)
    assert (result.ok, result.reason) == (
        False,
        "the Word document could not be opened: it is damaged",
    )


# --- Damaged and hostile input ------------------------------------------------------------


def test_truncated_pdf_never_crashes(tmp_path: Path) -> None:
    """A PDF cut off mid-file gives partial text (with a warning) or a reason, never an error."""
    data = corpus("009-pdflatex-geotopo/GeoTopo-komprimiert.pdf").read_bytes()
    path = tmp_path / "cut.pdf"
    path.write_bytes(data[: len(data) * 6 // 10])
    result = extract_text(path, PDF)
    if result.ok:
        assert result.chars > 0
        assert any("damaged" in w for w in result.warnings)
    else:
        assert result.reason


def test_small_truncated_pdf_is_repaired_or_refused(tmp_path: Path) -> None:
    """A one-page PDF without its cross-reference table is repaired by qpdf and read."""
    data = make_pdf("Abklärung", ["Die Abklärung der Sprachkompetenz ist abgeschlossen."])
    path = tmp_path / "noxref.pdf"
    path.write_bytes(data[: data.rindex(b"xref")])
    result = extract_text(path, PDF)
    assert result.ok, result.reason
    assert "Sprachkompetenz" in result.text
    assert result.warnings == [
        "the PDF is damaged and was repaired; some of its text may be missing"
    ]


@pytest.mark.parametrize(
    ("media_type", "reason"),
    [
        (PDF, "the PDF is damaged beyond repair"),
        (DOCX, "the file is not a ZIP container"),
        (PNG, "the PNG image is damaged or incomplete"),
        (JPEG, "the JPEG image is damaged or incomplete"),
        (TIFF, "the TIFF image is damaged or incomplete"),
    ],
)
def test_random_bytes_are_refused(tmp_path: Path, media_type: str, reason: str) -> None:
    """Random bytes declared as any binary type end as ok=False with a reason."""
    path = tmp_path / "noise.bin"
    path.write_bytes(random.Random(7).randbytes(64 * 1024))
    result = extract_text(path, media_type)
    assert (result.ok, result.reason, result.text) == (False, reason, "")


# --- Limits, timeouts and leftovers -------------------------------------------------------


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """Records every process the sandbox starts."""
    started: list[subprocess.Popen[bytes]] = []

    class RecordingPopen(subprocess.Popen[bytes]):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(subprocess, "Popen", RecordingPopen)
    return started


def _group_members(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes in process group *pgid*."""
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != "zombie":
                members.append(process)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def _ends_soon(process: psutil.Process, within_s: float = 3.0) -> bool:
    """Whether *process* is dead (a zombie waiting for init to reap it counts as dead)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_timeout_ends_with_the_timeout_reason_and_no_leftover_child(
    scanned_pdf: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    """A tiny timeout gives ok=False with the timeout reason; the child is gone."""
    result = extract_text(scanned_pdf, PDF, timeout_s=0.3)
    assert result.ok is False
    assert result.reason == "text extraction took longer than 0.3 s"
    assert len(spawned) == 1
    child = spawned[0]
    assert child.returncode is not None  # reaped: no zombie either
    assert all(c.pid != child.pid for c in psutil.Process().children(recursive=True))
    assert _group_members(child.pid) == []


def test_timeout_during_ocr_leaves_nothing_behind(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    """A deadline that falls during OCR leaves no process of the group behind."""
    # Twelve scanned pages take well over 2 s to OCR even on a fast, idle machine, so the
    # deadline surely falls inside the OCR loop.
    many = tmp_path / "many.pdf"
    many.write_bytes(image_only_pdf([scanned_page(SCAN_LINES)] * 12))
    result = extract_text(many, PDF, timeout_s=2.0)
    assert len(spawned) == 1
    assert spawned[0].returncode is not None
    assert _group_members(spawned[0].pid) == []
    if result.ok:  # the first pages made it in time: partial text, said so
        assert result.ocr_pages < 12
        assert any("time limit" in w for w in result.warnings)
    else:
        assert result.reason == "text extraction took longer than 2 s"


def _sandbox_sleep_with_grandchild(job: dict[str, Any]) -> None:
    """Sandbox target: start a long-running tool, then hang (ignoring the soft deadline)."""
    subprocess.Popen(["sleep", "60"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    while True:
        try:
            time.sleep(60)
        except SoftTimeout:
            continue


def test_sandbox_hard_timeout_kills_the_whole_process_group(
    spawned: list[subprocess.Popen[bytes]],
) -> None:
    """The child and the tool it started are SIGKILLed together at the deadline."""
    outcome_box: list[Any] = []
    runner = threading.Thread(
        target=lambda: outcome_box.append(
            run_in_sandbox(
                "tests.test_extract:_sandbox_sleep_with_grandchild",
                {},
                timeout_s=6,
                max_memory_mb=512,
                max_output_bytes=1024,
            )
        )
    )
    runner.start()
    grandchildren: list[psutil.Process] = []
    deadline = time.monotonic() + 5
    while not grandchildren and time.monotonic() < deadline:
        time.sleep(0.05)
        if spawned:
            grandchildren = [p for p in _group_members(spawned[0].pid) if p.name() == "sleep"]
    runner.join(timeout=15)
    assert grandchildren, "the sandboxed target did not start its tool"
    assert outcome_box[0].status == "timeout"
    assert all(_ends_soon(p) for p in grandchildren)
    assert _group_members(spawned[0].pid) == []


def _sandbox_partial(job: dict[str, Any]) -> dict[str, Any]:
    """Sandbox target: work until the soft deadline, then return what was done."""
    rounds = 0
    try:
        while True:
            time.sleep(0.01)
            rounds += 1
    except SoftTimeout:
        return {"rounds": rounds, "soft_deadline_given": "soft_deadline" in job}


def test_sandbox_soft_deadline_lets_the_target_return_partial_results() -> None:
    """The child is warned margin seconds before the hard deadline and can still answer."""
    outcome = run_in_sandbox(
        "tests.test_extract:_sandbox_partial",
        {},
        timeout_s=4,
        max_memory_mb=512,
        max_output_bytes=1024,
        soft_deadline_margin_s=1.5,
    )
    assert outcome.status == "ok"
    assert outcome.value["rounds"] > 0 and outcome.value["soft_deadline_given"]
    assert outcome.returncode == 0
    # Answered at the soft deadline (2.5 s), well before the hard one (4 s).
    assert 2.4 < outcome.elapsed_s < 3.9


def _sandbox_allocate(job: dict[str, Any]) -> int:
    """Sandbox target: allocate more memory than allowed."""
    return len(bytearray(job["bytes"]))


def _sandbox_abort(job: dict[str, Any]) -> None:
    """Sandbox target: die like a crashing native parser."""
    os.abort()


def _sandbox_big_output(job: dict[str, Any]) -> str:
    """Sandbox target: return more than the caller accepts."""
    return "x" * job["size"]


def _sandbox_environment(job: dict[str, Any]) -> dict[str, str]:
    """Sandbox target: show the environment the child sees."""
    return dict(os.environ)


def _sandbox_burn_cpu(job: dict[str, Any]) -> None:
    """Sandbox target: spin on the CPU forever."""
    while True:
        sum(range(10_000_000))


@pytest.mark.parametrize(
    ("target", "job", "status"),
    [
        ("_sandbox_allocate", {"bytes": 2 * 1024**3}, "memory"),
        ("_sandbox_abort", {}, "crash"),
        ("_sandbox_big_output", {"size": 100_000}, "output"),
        ("_sandbox_burn_cpu", {}, "cpu"),
    ],
)
def test_sandbox_reports_how_a_child_failed(
    target: str, job: dict[str, Any], status: str, spawned: list[subprocess.Popen[bytes]]
) -> None:
    """Memory exhaustion, a native crash, oversized output and the CPU limit are told apart."""
    outcome = run_in_sandbox(
        f"tests.test_extract:{target}",
        job,
        timeout_s=20,
        max_memory_mb=512,
        max_output_bytes=10_000,
        cpu_seconds=2,
    )
    assert outcome.status == status
    assert _group_members(spawned[0].pid) == []


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        (SandboxOutcome("timeout"), "text extraction took longer than 30 s"),
        (SandboxOutcome("memory"), "text extraction needs more than 300 MB of memory"),
        (
            SandboxOutcome("cpu", error="more than 31 s of CPU time"),
            "text extraction used more than 31 s of CPU time",
        ),
        (
            SandboxOutcome("killed"),
            "text extraction was killed (the file may need more than 300 MB)",
        ),
        (SandboxOutcome("output"), "text extraction produced more output than allowed"),
        (SandboxOutcome("error", error="KeyError"), "the file could not be read: it is damaged"),
        (SandboxOutcome("crash"), "text extraction failed: the file made the extractor crash"),
        (SandboxOutcome("ok", value={"ok": "yes"}), "text extraction returned an invalid result"),
    ],
)
def test_sandbox_outcomes_become_person_readable_reasons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outcome: SandboxOutcome, reason: str
) -> None:
    """Every way the child can fail ends as ok=False with a short English reason."""
    monkeypatch.setattr(extract_package, "run_in_sandbox", lambda *a, **k: outcome)
    path = tmp_path / "x.pdf"
    path.write_bytes(make_pdf("x", ["y"]))
    result = extract_text(path, PDF, timeout_s=30, max_memory_mb=300)
    assert (result.ok, result.reason, result.text, result.chars) == (False, reason, "", 0)
    assert result.method == "text-layer"


def test_sandbox_child_sees_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The child's environment is built from scratch: no DOSSIER_* settings, no tokens."""
    monkeypatch.setenv("DOSSIER_DATABASE_URL", "postgresql://user:secret@db/dossier")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "very-secret")
    outcome = run_in_sandbox(
        "tests.test_extract:_sandbox_environment",
        {},
        timeout_s=20,
        max_memory_mb=512,
        max_output_bytes=100_000,
        env={"OMP_THREAD_LIMIT": "1"},
    )
    assert outcome.status == "ok"
    environment = outcome.value
    assert "DOSSIER_DATABASE_URL" not in environment
    assert "AWS_SECRET_ACCESS_KEY" not in environment
    assert environment["OMP_THREAD_LIMIT"] == "1"
    assert not any("secret" in value for value in environment.values())


def test_tesseract_is_never_handed_a_file_list() -> None:
    """Tesseract reads a non-image as a list of files to OCR; only PGM bytes are passed."""
    with pytest.raises(OcrError):
        run_tesseract(
            b"/etc/hostname\n",
            languages="deu",
            dpi=None,
            timeout_s=5,
            tesseract="/usr/bin/tesseract",
        )


def test_invalid_arguments_are_rejected(tmp_path: Path) -> None:
    """Programming errors raise instead of being reported as a bad file."""
    path = tmp_path / "a.txt"
    path.write_text("Hallo")
    with pytest.raises(ValueError, match="language"):
        extract_text(path, TEXT, ocr_languages="deu -c tessedit_write_images=1")
    with pytest.raises(ValueError, match="media type"):
        extract_text(path, "application/zip")
    with pytest.raises(ValueError):
        extract_text(path, TEXT, timeout_s=0)
    with pytest.raises(FileNotFoundError):
        extract_text(tmp_path / "missing.pdf", PDF)


# --- Plain text and normalisation ---------------------------------------------------------


def test_plain_utf8_text_is_read_and_normalised(tmp_path: Path) -> None:
    """UTF-8 (with BOM) is decoded; NUL bytes go, spaces collapse, paragraphs stay."""
    path = tmp_path / "notiz.txt"
    path.write_bytes(
        "\ufeffGespräch   mit\tFrau Müller\x00\r\n\r\n\r\n\r\nZweiter  Absatz \n".encode()
    )
    result = extract_text(path, TEXT)
    assert result.ok
    assert (result.method, result.pages, result.ocr_pages) == ("plain", None, 0)
    assert result.text == "Gespräch mit Frau Müller\n\nZweiter Absatz"
    assert result.chars == len(result.text)
    assert result.warnings == []


def test_plain_text_in_windows_1252_falls_back(tmp_path: Path) -> None:
    """Old Windows files decode as cp1252, and the result says so."""
    path = tmp_path / "alt.txt"
    path.write_bytes("Grüsse aus Zürich – 5 €".encode("cp1252"))
    result = extract_text(path, TEXT)
    assert result.text == "Grüsse aus Zürich – 5 €"
    assert result.warnings == ["the file is not UTF-8; it was read as cp1252"]


def test_decode_plain_falls_back_to_latin1_for_bytes_undefined_in_cp1252() -> None:
    """0x81 is undefined in Windows-1252; Latin-1 decodes every byte."""
    assert decode_plain(b"a\x81b") == ("a\x81b", "latin-1")


def test_plain_text_is_capped(tmp_path: Path) -> None:
    """Text beyond the cap is cut off with a warning."""
    path = tmp_path / "long.txt"
    path.write_text("Wort " * 1000)
    record = extract_plain(path, max_chars=100)
    assert len(record["text"]) <= 100
    assert "the text was cut off after 100 characters" in record["warnings"]


def test_normalize_text() -> None:
    """NFC, no controls or soft hyphens, single spaces, at most one blank line."""
    assert normalize_text("Gespra\u0308ch") == "Gespräch"  # combining diaeresis → NFC
    assert normalize_text("Kosten\u00adgutsprache") == "Kostengutsprache"
    assert normalize_text("a\x00b\x07c") == "abc"
    assert normalize_text("  a \u00a0\t b  \n  c  ") == "a b\nc"
    assert normalize_text("a\n\n\n\n\nb") == "a\n\nb"
    assert normalize_text("a\r\nb\rc\fd") == "a\nb\nc\n\nd"
    assert normalize_text("x\ud800y") == "xy"  # a lone surrogate cannot be stored as UTF-8


def test_text_collector_caps_across_blocks() -> None:
    """Blocks are joined by a blank line and cut at the limit."""
    collector = TextCollector(max_chars=12)
    collector.add("Seite  eins")
    collector.add("Seite zwei")
    assert collector.text() == "Seite eins"
    assert collector.full
    assert collector.warnings() == ["the text was cut off after 12 characters"]
