"""Tests for upload type sniffing, DOCX confirmation and sandboxed file inspection."""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
import time
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import docx
import pikepdf
import psutil
import pytest

from dossier_service import sandbox as sandbox_module
from dossier_service.files import inspect as inspect_module
from dossier_service.files.inspect import FileReport, inspect_file
from dossier_service.files.sniff import (
    ACCEPTED_MEDIA_TYPES,
    DOCX,
    JPEG,
    PDF,
    PNG,
    TEXT,
    TIFF,
    ZIP,
    check_docx_container,
    confirm_docx,
    extension_for,
    sniff_file,
    sniff_media_type,
)

# --- The corpus of real PDFs -------------------------------------------------------


#: A copy of the public py-pdf sample files (CC-BY-SA-4.0), see tests/data/README.md.
CORPUS = Path(__file__).resolve().parent / "data" / "py-pdf-sample-files"
GROUND_TRUTH: dict[str, dict[str, Any]] = {
    entry["path"]: entry for entry in json.loads((CORPUS / "files.json").read_text())["data"]
}
CORPUS_PDFS: list[str] = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*.pdf"))
# This file is damaged in the corpus itself: its last 1.1 MB are NUL bytes, so the page tree
# object (172) and the main xref are gone. files.json still says 4 pages (pypdf reads the
# first-page hint of the linearised file); qpdf cannot rebuild it, even with recovery.
KNOWN_DAMAGED = {"017-unreadable-meta-data/unreadablemetadata.pdf"}


def corpus_pdf(relative: str) -> Path:
    """Path of a corpus PDF."""
    return CORPUS / relative


def test_corpus_files_have_ground_truth() -> None:
    assert CORPUS_PDFS, "no PDFs found in the corpus"
    missing_truth = [p for p in CORPUS_PDFS if p not in GROUND_TRUTH]
    assert missing_truth == []


@pytest.mark.parametrize("relative", CORPUS_PDFS)
def test_every_corpus_pdf_sniffs_as_pdf(relative: str) -> None:
    path = corpus_pdf(relative)
    assert sniff_media_type(path.read_bytes()[:8192]) == PDF
    assert sniff_file(path) == PDF


@pytest.mark.parametrize("relative", CORPUS_PDFS)
def test_every_corpus_pdf_inspects_like_ground_truth(relative: str) -> None:
    truth = GROUND_TRUTH[relative]
    report = inspect_file(corpus_pdf(relative), PDF)
    json.dumps(report.flags)  # must be serialisable as is
    if relative in KNOWN_DAMAGED:
        assert not report.ok
        assert report.reason == "the PDF could not be opened: it is damaged or not a PDF"
        return
    assert report.ok, report.reason
    assert report.reason is None
    assert report.flags["encrypted"] is truth["encrypted"]
    if truth["encrypted"]:
        assert report.flags["needs_password"] is True
        assert report.flags["pages"] is None
    else:
        assert report.flags["needs_password"] is False
        assert report.flags["pages"] == truth["pages"]
        assert report.flags["repaired"] is False
        assert report.flags["has_forms"] is bool(truth["forms"])
        assert report.flags["scan_truncated"] is False


def test_password_protected_pdf() -> None:
    report = inspect_file(
        corpus_pdf("005-libreoffice-writer-password/libreoffice-writer-password.pdf"), PDF
    )
    assert report.ok
    assert report.flags["encrypted"] is True
    assert report.flags["needs_password"] is True
    assert report.flags["pages"] is None
    assert report.flags["active_content"] is None  # unknown without the password
    assert report.flags["pdf_version"] == "1.5"  # read from the header


def test_pdf_with_attachment_is_active_content() -> None:
    report = inspect_file(corpus_pdf("025-attachment/with-attachment.pdf"), PDF)
    assert report.ok
    assert report.flags["active_content"] is True
    assert report.flags["active_content_kinds"] == ["embedded_files"]


def test_plain_pdf_has_no_active_content() -> None:
    report = inspect_file(corpus_pdf("004-pdflatex-4-pages/pdflatex-4-pages.pdf"), PDF)
    assert report.ok
    assert report.flags["active_content"] is False
    assert report.flags["active_content_kinds"] == []
    assert report.flags["pdf_version"] == "1.5"
    # An /OpenAction that only opens page 1 (GoTo) is not active content.


@pytest.mark.parametrize(
    ("relative", "fields"),
    [
        ("010-pdflatex-forms/pdflatex-forms.pdf", True),
        ("012-libreoffice-form/libreoffice-form.pdf", True),
        # An /AcroForm without /Fields: files.json counts it as a form, and so do we.
        ("013-reportlab-overlay/reportlab-overlay.pdf", False),
    ],
)
def test_forms_pdf(relative: str, fields: bool) -> None:
    report = inspect_file(corpus_pdf(relative), PDF)
    assert report.ok
    assert report.flags["has_forms"] is True
    assert report.flags["has_xfa"] is False
    assert (report.flags["form_fields"] > 0) is fields  # type: ignore[operator]


@pytest.mark.parametrize(
    "relative",
    [
        "004-pdflatex-4-pages/pdflatex-4-pages.pdf",
        # qpdf's recovery rebuilds 3 of these 6 pages from the first 30 %: only the missing
        # %%EOF gives the truncation away.
        "007-imagemagick-images/imagemagick-images.pdf",
        "009-pdflatex-geotopo/GeoTopo-komprimiert.pdf",
    ],
)
def test_truncated_pdf_is_rejected(relative: str, tmp_path: Path) -> None:
    data = corpus_pdf(relative).read_bytes()
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(data[: int(len(data) * 0.3)])
    assert sniff_file(cut) == PDF
    report = inspect_file(cut, PDF)
    assert not report.ok
    assert report.reason
    assert "PDF" in report.reason


def test_pdf_with_shifted_offsets_is_repaired_not_rejected(tmp_path: Path) -> None:
    data = corpus_pdf("004-pdflatex-4-pages/pdflatex-4-pages.pdf").read_bytes()
    newline = data.index(b"\n", 10) + 1
    shifted = tmp_path / "shifted.pdf"
    shifted.write_bytes(
        data[:newline] + b"% padding that moves every object\n" * 3 + data[newline:]
    )
    report = inspect_file(shifted, PDF)
    assert report.ok, report.reason
    assert report.flags["repaired"] is True
    assert report.flags["pages"] == 4


def test_garbage_after_pdf_header_is_rejected(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(b"%PDF-1.7\n" + random.Random(42).randbytes(64 * 1024))
    assert sniff_file(garbage) == PDF
    report = inspect_file(garbage, PDF)
    assert not report.ok
    assert report.reason == "the PDF could not be opened: it is damaged or not a PDF"


def test_pdf_open_action_javascript_is_flagged(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.Root.OpenAction = pikepdf.Dictionary(
        S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert('x')")
    )
    path = tmp_path / "js.pdf"
    pdf.save(path)
    report = inspect_file(path, PDF)
    assert report.ok
    assert report.flags["active_content"] is True
    assert report.flags["active_content_kinds"] == ["javascript"]


def test_pdf_javascript_name_tree_and_launch_in_page_actions(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    script = pdf.make_indirect(
        pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pdf.make_stream(b"1"))
    )
    pdf.Root.Names = pikepdf.Dictionary(
        JavaScript=pikepdf.Dictionary(Names=pikepdf.Array([pikepdf.String("a"), script]))
    )
    launch = pdf.make_indirect(pikepdf.Dictionary(S=pikepdf.Name.Launch, F=pikepdf.String("x.exe")))
    pdf.pages[0].obj.AA = pikepdf.Dictionary(O=launch)
    path = tmp_path / "launch.pdf"
    pdf.save(path)
    report = inspect_file(path, PDF)
    assert report.ok
    assert report.flags["active_content_kinds"] == ["javascript", "launch"]


def test_pdf_object_scan_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # In-process on purpose: the budget constant cannot be patched inside the child.
    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.Root.Junk = pikepdf.Array(list(range(5000)))
    pdf.Root.OpenAction = pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("1"))
    monkeypatch.setattr(inspect_module, "_MAX_SCAN_VALUES", 1000)
    kinds: set[str] = set()
    scanned, truncated = inspect_module._scan_objects(pdf, kinds)
    assert truncated is True
    assert scanned >= 1
    # The document-level actions are checked apart from the bounded scan.
    catalog_kinds, _forms = inspect_module._catalog_facts(pdf)
    assert catalog_kinds == {"javascript"}


def test_pdf_encrypted_with_empty_user_password_opens(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    pdf.add_blank_page()
    path = tmp_path / "enc.pdf"
    pdf.save(path, encryption=pikepdf.Encryption(user="", owner="owner-secret"))
    report = inspect_file(path, PDF)
    assert report.ok
    assert report.flags["encrypted"] is True
    assert report.flags["needs_password"] is False
    assert report.flags["pages"] == 1


def test_pdf_without_pages_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty.pdf"
    pikepdf.new().save(path)
    report = inspect_file(path, PDF)
    assert not report.ok
    assert report.reason == "the PDF has no pages"


def test_pdf_decompression_bomb_hits_memory_limit(tmp_path: Path) -> None:
    compressor = zlib.compressobj(9)
    chunk = b"\0" * (1024 * 1024)
    data = b"".join(compressor.compress(chunk) for _ in range(300)) + compressor.flush()
    pdf = pikepdf.new()
    pdf.add_blank_page()
    stream = pikepdf.Stream(pdf, data)
    stream.Filter = pikepdf.Name.FlateDecode
    pdf.pages[0].obj.Contents = pdf.make_indirect(stream)
    path = tmp_path / "bomb.pdf"
    pdf.save(path)
    report = inspect_file(path, PDF, max_memory_mb=200)
    assert not report.ok
    assert report.reason == "the file needs more than 200 MB of memory to inspect"


def _children() -> list[psutil.Process]:
    """Live descendants of the test process (other suites' long-lived helpers excluded)."""
    return [
        c
        for c in psutil.Process().children(recursive=True)
        if c.status() != "zombie" and c.pid not in _PREEXISTING
    ]


#: Descendants that existed before a test ran (e.g. a browser driver kept for the session).
_PREEXISTING: set[int] = set()


@pytest.fixture(autouse=True)
def _note_preexisting_children() -> None:
    """Remember processes started by earlier tests, so only new leftovers count."""
    _PREEXISTING.clear()
    _PREEXISTING.update(p.pid for p in psutil.Process().children(recursive=True))


def test_tiny_timeout_kills_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.pdf"
    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.save(path)
    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def recording_popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = real_popen(*args, **kwargs)
        started.append(proc)
        return proc

    monkeypatch.setattr(sandbox_module.subprocess, "Popen", recording_popen)
    report = inspect_file(path, PDF, timeout_s=0.001)
    assert report == FileReport(False, "inspection took longer than 0.001 s", {"timed_out": True})
    assert len(started) == 1
    assert started[0].returncode is not None  # killed and reaped: no zombie left behind
    assert _children() == []


def test_hung_child_is_killed_at_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A sitecustomize on the child's path makes it hang before it even looks at the file.
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text("import time\ntime.sleep(60)\n")
    real_env = sandbox_module._child_env

    def hanging_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = real_env(extra)
        env["PYTHONPATH"] = f"{hook}{os.pathsep}{env['PYTHONPATH']}"
        return env

    monkeypatch.setattr(sandbox_module, "_child_env", hanging_env)
    path = tmp_path / "x.pdf"
    path.write_bytes(b"%PDF-1.4\n")
    began = time.monotonic()
    report = inspect_file(path, PDF, timeout_s=1)
    elapsed = time.monotonic() - began
    assert not report.ok
    assert report.reason == "inspection took longer than 1 s"
    assert elapsed < 10
    assert _children() == []


def test_inspect_rejects_unknown_type_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        inspect_file(tmp_path, ZIP)
    with pytest.raises(FileNotFoundError):
        inspect_file(tmp_path / "missing.pdf", PDF)


def test_child_entry_point_prints_one_result_line(tmp_path: Path) -> None:
    path = tmp_path / "x.pdf"
    pdf = pikepdf.new()
    pdf.add_blank_page()
    pdf.save(path)
    root = Path(inspect_module.__file__).resolve().parents[2]
    result = subprocess.run(
        [inspect_module.sys.executable, "-m", "dossier_service.files.inspect", str(path), PDF],
        capture_output=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        timeout=60,
        check=True,
    )
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("DOSSIER-INSPECT-RESULT ")
    data = json.loads(lines[0].split(" ", 1)[1])
    assert data["ok"] is True
    assert data["flags"]["pages"] == 1


# --- Sniffing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "head",
    [
        b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 56 + b"%PDF-1.4",  # EXE with a PDF header
        b"\x7fELF\x02\x01\x01" + b"\x00" * 9,
        b"#!/bin/sh\nrm -rf /\n",
        b"{\\rtf1\\ansi hello}",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100,  # .doc / encrypted .docx
        b"GIF89a\x01\x00\x01\x00",
        b"%!PS-Adobe-3.0\n",
        b"<!DOCTYPE html><html><body>hi</body></html>",
        b"<html><script>alert(1)</script></html>",
        b"  \n\t<HTML>",
        b"\xef\xbb\xbf  <!doctype HTML>",
        b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
        b"<?xml version='1.0'?><svg/>",
        b"<script>alert(1)</script>",
        b"<!-- x --><html>",
        # HTML with a PDF header inside: still HTML for a browser.
        b"<html>%PDF-1.4</html>",
        b"",
        b"\xef\xbb\xbf",
        b"\x00\x01\x02\x03",
        b"plain text with a NUL \x00 inside",
        b"valid start but \xff\xfe invalid UTF-8 in the middle of the text",
        b"\x1b\x1b\x1b\x1b\x07\x07 mostly control characters",
        "UTF-16 text".encode("utf-16"),
        b"\x1f\x8b\x08\x00",  # gzip
        b"PK\x05\x06" + b"\x00" * 18,  # empty ZIP
    ],
)
def test_sniff_refuses(head: bytes) -> None:
    assert sniff_media_type(head) is None


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", PDF),
        (b"\n\n   junk before header %PDF-1.4\n", PDF),
        (b"x" * 1000 + b"%PDF-1.4", PDF),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", JPEG),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", PNG),
        (b"II*\x00\x08\x00\x00\x00", TIFF),
        (b"MM\x00*\x00\x00\x00\x08", TIFF),
        (b"PK\x03\x04\x14\x00", ZIP),
        (b"Hallo Welt\r\nZweite Zeile\tmit Tab\n", TEXT),
        ("Grüezi mitenand, Übersetzung: مرحبا ሰላም".encode(), TEXT),
        (b"\xef\xbb\xbfText with a BOM", TEXT),
        # The head cut a 3-byte character in two: still text.
        ("Grüße €".encode() + "€".encode()[:2], TEXT),
        (b"Note: <b> is not at the start", TEXT),
    ],
)
def test_sniff_accepts(head: bytes, expected: str) -> None:
    assert sniff_media_type(head) == expected


def test_pdf_header_beyond_first_kilobyte_is_not_pdf() -> None:
    assert sniff_media_type(b"x" * 1100 + b"%PDF-1.4") == TEXT
    assert sniff_media_type(b"\x01" * 1100 + b"%PDF-1.4") is None


def test_sniff_only_looks_at_8_kib() -> None:
    assert sniff_media_type(b"a" * 8192 + b"\x00") == TEXT


def test_accepted_types_and_extensions() -> None:
    assert DOCX == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert ACCEPTED_MEDIA_TYPES == {PDF, JPEG, PNG, TIFF, DOCX, TEXT}
    assert ZIP not in ACCEPTED_MEDIA_TYPES
    assert extension_for(PDF) == ".pdf"
    assert extension_for(DOCX) == ".docx"
    assert extension_for(TEXT) == ".txt"
    assert {extension_for(t) for t in ACCEPTED_MEDIA_TYPES} == {
        ".pdf",
        ".jpg",
        ".png",
        ".tif",
        ".docx",
        ".txt",
    }
    with pytest.raises(ValueError):
        extension_for(ZIP)
    with pytest.raises(ValueError):
        extension_for("text/html")


# --- DOCX ---------------------------------------------------------------------------------


@pytest.fixture
def real_docx(tmp_path: Path) -> Path:
    document = docx.Document()
    document.add_paragraph("Verfügung über die Integrationsmassnahmen")
    document.add_paragraph("Zweiter Absatz")
    document.add_table(rows=2, cols=3)
    path = tmp_path / "real.docx"
    document.save(str(path))
    return path


def _rewrite_zip(
    source: Path,
    target: Path,
    *,
    rename: dict[str, str] | None = None,
    replace: dict[str, bytes] | None = None,
    extra: dict[str, bytes] | None = None,
    text_replace: tuple[bytes, bytes] | None = None,
) -> Path:
    """Copy a ZIP, renaming or replacing entries and adding new ones."""
    rename = rename or {}
    replace = replace or {}
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = replace.get(info.filename, zin.read(info))
            if text_replace:
                data = data.replace(*text_replace)
            zout.writestr(rename.get(info.filename, info.filename), data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return target


def test_real_docx_sniffs_confirms_and_inspects(real_docx: Path) -> None:
    assert sniff_media_type(real_docx.read_bytes()[:8192]) == ZIP
    assert confirm_docx(real_docx)
    assert check_docx_container(real_docx) is None
    assert sniff_file(real_docx) == DOCX
    report = inspect_file(real_docx, DOCX)
    assert report.ok, report.reason
    assert report.flags == {
        "paragraphs": 2,
        "tables": 1,
        "has_macros": False,
        "has_activex": False,
        "embedded_objects": 0,
        "external_links": 0,
        "external_link_kinds": [],
    }


def test_word_online_document2_part_is_accepted(real_docx: Path, tmp_path: Path) -> None:
    # Word Online saves the main part as word/document2.xml; [Content_Types].xml says so.
    path = _rewrite_zip(
        real_docx,
        tmp_path / "online.docx",
        rename={
            "word/document.xml": "word/document2.xml",
            "word/_rels/document.xml.rels": "word/_rels/document2.xml.rels",
        },
        text_replace=(b"word/document.xml", b"word/document2.xml"),
    )
    assert confirm_docx(path)
    report = inspect_file(path, DOCX)
    assert report.ok, report.reason
    assert report.flags["paragraphs"] == 2


def test_docx_macros_and_external_links_flagged(real_docx: Path, tmp_path: Path) -> None:
    document = docx.Document(str(real_docx))
    document.part.relate_to(
        "https://example.org/",
        "http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink",
        is_external=True,
    )
    document.part.relate_to(
        "https://attacker.example/t.dotm",
        "http://schemas.openxmlformats.org/officeDocument/2006/relationships/attachedTemplate",
        is_external=True,
    )
    linked = tmp_path / "linked.docx"
    document.save(str(linked))
    path = _rewrite_zip(linked, tmp_path / "macro.docx", extra={"word/vbaProject.bin": b"\xd0\xcf"})
    report = inspect_file(path, DOCX)
    assert report.ok, report.reason
    assert report.flags["has_macros"] is True
    assert report.flags["external_links"] == 2
    assert report.flags["external_link_kinds"] == ["attachedTemplate", "hyperlink"]


def test_zip_that_is_not_docx(tmp_path: Path) -> None:
    path = tmp_path / "archive.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
        archive.writestr("word/document.xml", "<w:document/>")  # no [Content_Types].xml
    assert sniff_media_type(path.read_bytes()[:8192]) == ZIP
    assert not confirm_docx(path)
    assert sniff_file(path) is None
    report = inspect_file(path, DOCX)
    assert not report.ok
    assert report.reason == "the ZIP container is not a Word document (DOCX)"


def test_xlsx_is_not_docx(tmp_path: Path) -> None:
    path = tmp_path / "sheet.xlsx"
    content_types = (
        b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        b'content-types"><Override PartName="/xl/workbook.xml" ContentType="application/'
        b'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>'
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", content_types)
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("word/document.xml", "<w:document/>")
    assert not confirm_docx(path)


def test_docx_content_types_with_dtd_refused(real_docx: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(real_docx) as archive:
        content_types = archive.read("[Content_Types].xml")
    evil = content_types.replace(b"<Types", b'<!DOCTYPE Types [<!ENTITY a "aaaaaaaaaa">]><Types', 1)
    path = _rewrite_zip(real_docx, tmp_path / "dtd.docx", replace={"[Content_Types].xml": evil})
    assert not confirm_docx(path)


def test_zip_bomb_ratio_refused(real_docx: Path, tmp_path: Path) -> None:
    # 2 MiB of zeros deflates to ~2 KiB: a ratio of ~1000:1 on an entry above 1 MiB.
    path = _rewrite_zip(
        real_docx, tmp_path / "bomb.docx", extra={"word/media/zeros.bin": b"\0" * (2 * 1024 * 1024)}
    )
    assert sniff_media_type(path.read_bytes()[:8192]) == ZIP
    reason = check_docx_container(path)
    assert reason is not None and "200:1" in reason
    assert not confirm_docx(path)
    assert sniff_file(path) is None
    report = inspect_file(path, DOCX)
    assert not report.ok and report.reason == reason


def test_well_compressible_small_entry_is_fine(real_docx: Path, tmp_path: Path) -> None:
    # The ratio rule only applies to entries above 1 MiB.
    path = _rewrite_zip(
        real_docx, tmp_path / "ok.docx", extra={"word/media/zeros.bin": b"\0" * (512 * 1024)}
    )
    assert confirm_docx(path)


def test_zip_with_too_many_entries_refused(real_docx: Path, tmp_path: Path) -> None:
    path = tmp_path / "many.docx"
    shutil.copy(real_docx, path)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_STORED) as archive:
        for i in range(10_001):
            archive.writestr(f"word/media/{i}.bin", b"")
    reason = check_docx_container(path)
    assert reason == "the ZIP container has more than 10,000 entries"


def _set_declared_sizes(path: Path, size: int, skip: set[str]) -> None:
    """Patch the central directory so entries declare *size* uncompressed bytes."""
    data = bytearray(path.read_bytes())
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        name_length = struct.unpack_from("<H", data, pos + 28)[0]
        name = bytes(data[pos + 46 : pos + 46 + name_length]).decode()
        if name not in skip:
            struct.pack_into("<I", data, pos + 24, size)
        pos = data.find(b"PK\x01\x02", pos + 46)
    path.write_bytes(bytes(data))


def test_zip_declaring_more_than_512_mib_refused(real_docx: Path, tmp_path: Path) -> None:
    path = tmp_path / "declared.docx"
    shutil.copy(real_docx, path)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:
        for i in range(513):
            archive.writestr(f"word/media/{i}.bin", b"x")
    # Exactly 1 MiB each: below the ratio rule, so only the total can catch it.
    _set_declared_sizes(path, 1024 * 1024, skip={"[Content_Types].xml"})
    assert check_docx_container(path) == "the ZIP container would unpack to more than 512 MiB"


def test_damaged_docx_rejected(real_docx: Path, tmp_path: Path) -> None:
    path = _rewrite_zip(
        real_docx, tmp_path / "broken.docx", replace={"word/document.xml": b"<w:document <<"}
    )
    assert confirm_docx(path)  # the container is fine; the XML inside is not
    report = inspect_file(path, DOCX)
    assert not report.ok
    assert report.reason == "the Word document could not be opened: it is damaged"


def test_truncated_docx_rejected(real_docx: Path, tmp_path: Path) -> None:
    data = real_docx.read_bytes()
    path = tmp_path / "cut.docx"
    path.write_bytes(data[: len(data) // 2])
    assert sniff_media_type(path.read_bytes()[:8192]) == ZIP
    assert not confirm_docx(path)
    report = inspect_file(path, DOCX)
    assert not report.ok
    assert report.reason == "the file is not a ZIP container"


# --- Images and text ----------------------------------------------------------------------


def _png(width: int, height: int, *, crc_ok: bool = True, complete: bool = True) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) ^ (0 if crc_ok or kind != b"IHDR" else 1)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
    return body + (chunk(b"IEND", b"") if complete else b"")


def _jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xda\x00\x02" + b"\x00" * 10 + b"\xff\xd9"


def _tiff(width: int, height: int, *, big_endian: bool = False, pages: int = 1) -> bytes:
    order = ">" if big_endian else "<"
    out = (b"MM\x00*" if big_endian else b"II*\x00") + struct.pack(order + "I", 8)
    offset = 8
    for page in range(pages):
        ifd_size = 2 + 2 * 12 + 4
        next_offset = offset + ifd_size if page < pages - 1 else 0
        short_value = width << 16 if big_endian else width
        out += struct.pack(order + "H", 2)
        out += struct.pack(order + "HHII", 256, 3, 1, short_value)
        out += struct.pack(order + "HHII", 257, 4, 1, height)
        out += struct.pack(order + "I", next_offset)
        offset += ifd_size
    return out


@pytest.mark.parametrize(
    ("data", "media_type", "expected"),
    [
        (_png(640, 480), PNG, {"width": 640, "height": 480, "complete": True}),
        (_png(640, 480, complete=False), PNG, {"complete": False}),
        (_jpeg(1024, 768), JPEG, {"width": 1024, "height": 768, "components": 1}),
        (_tiff(100, 200), TIFF, {"width": 100, "height": 200, "pages": 1}),
        (_tiff(100, 200, big_endian=True, pages=3), TIFF, {"width": 100, "pages": 3}),
    ],
)
def test_image_headers(
    data: bytes, media_type: str, expected: dict[str, object], tmp_path: Path
) -> None:
    path = tmp_path / "image"
    path.write_bytes(data)
    assert sniff_file(path) == media_type
    report = inspect_file(path, media_type)
    assert report.ok, report.reason
    assert expected.items() <= report.flags.items()
    json.dumps(report.flags)


@pytest.mark.parametrize(
    ("data", "media_type", "reason"),
    [
        (_png(640, 480, crc_ok=False), PNG, "the PNG image is damaged or incomplete"),
        (
            _png(20_000, 20_000),
            PNG,
            "the image is too large (20000 × 20000 pixels; the limit is 100 million)",
        ),
        (b"\x89PNG\r\n\x1a\n", PNG, "the PNG image is damaged or incomplete"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", JPEG, "the JPEG image is damaged or incomplete"),
        (b"\xff\xd8\xff\xd9", JPEG, "the JPEG image is damaged or incomplete"),
        (b"II*\x00\x08\x00\x00\x00", TIFF, "the TIFF image is damaged or incomplete"),
        # An IFD that points to itself must not loop forever.
        (
            b"II*\x00\x08\x00\x00\x00\x01\x00"
            + struct.pack("<HHII", 256, 3, 1, 5)
            + b"\x08\x00\x00\x00",
            TIFF,
            "the TIFF image is damaged or incomplete",
        ),
    ],
)
def test_damaged_images(data: bytes, media_type: str, reason: str, tmp_path: Path) -> None:
    path = tmp_path / "image"
    path.write_bytes(data)
    report = inspect_file(path, media_type)
    assert not report.ok
    assert report.reason == reason


def test_text_counts_characters(tmp_path: Path) -> None:
    path = tmp_path / "note.txt"
    path.write_bytes("\ufeffGrüezi مرحبا\n".encode())
    report = inspect_file(path, TEXT)
    assert report == FileReport(True, None, {"chars": 13, "chars_truncated": False})


def test_large_text_count_is_limited(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(("ä" * 1024 + "\n").encode() * 5000)  # ~10 MiB
    report = inspect_file(path, TEXT)
    assert report.ok
    assert report.flags["chars_truncated"] is True
    assert 0 < report.flags["chars"] < 5_125_000  # type: ignore[operator]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"abc\xff def", "the text file is not valid UTF-8"),
        ("ends with a cut €".encode()[:-1], "the text file is not valid UTF-8"),
        (b"abc\x00def", "the text file contains NUL bytes: it is not text"),
        (b"", "the text file is empty"),
    ],
)
def test_bad_text(data: bytes, reason: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(data)
    report = inspect_file(path, TEXT)
    assert not report.ok
    assert report.reason == reason
