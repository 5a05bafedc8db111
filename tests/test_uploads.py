"""Hostile uploads are refused cleanly, and every refusal leaves nothing behind."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.http import parse_options_header

from dossier_service.config import Settings
from dossier_service.container import Container
from dossier_service.models import DocumentVersion
from dossier_service.samples import make_docx, make_pdf
from tests.factories import World, new_case, upload
from tests.sample_files import declared_png, make_png
from tests.upload_checks import assert_nothing_left, snapshot, spool_entries

#: A copy of the public py-pdf sample files (CC-BY-SA-4.0), see tests/data/README.md.
CORPUS = Path(__file__).resolve().parent / "data" / "py-pdf-sample-files"
#: Small enough that the test bodies stay tiny, large enough for the sample PDFs.
LIMIT = 64 * 1024
BIDI = "\u202e\u2066\u202a\u2069"


def corpus_pdf(predicate: Any) -> bytes:
    """The bytes of the first corpus PDF (per files.json) that matches and is present."""
    entries = json.loads((CORPUS / "files.json").read_text())["data"]
    for entry in entries:
        path = CORPUS / entry["path"]
        if predicate(entry) and path.is_file():
            return path.read_bytes()
    raise AssertionError("the shared corpus lacks a PDF this test needs")


def plain_pdf() -> bytes:
    """A real, unencrypted one-page PDF from the corpus."""
    return corpus_pdf(lambda e: not e["encrypted"] and e["pages"] == 1 and not e["annotations"])


def encrypted_pdf() -> bytes:
    """The password-protected corpus PDF."""
    return corpus_pdf(lambda e: e["encrypted"])


def attachment_pdf() -> bytes:
    """The corpus PDF that carries an embedded file."""
    return (CORPUS / "025-attachment" / "with-attachment.pdf").read_bytes()


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    """A deflated ZIP archive holding the given entries."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def docx_package(extra: dict[str, bytes] | None = None) -> bytes:
    """A genuine DOCX package, re-zipped with optional extra entries."""
    real = zipfile.ZipFile(io.BytesIO(make_docx("Plan", ["Text"])))
    entries = {info.filename: real.read(info) for info in real.infolist()}
    return zip_bytes({**entries, **(extra or {})})


def zip_bomb_docx() -> bytes:
    """A DOCX package plus one entry of 20 MiB of zeros (compressed about 1000:1)."""
    return docx_package({"word/media/padding.bin": bytes(20 * 1024 * 1024)})


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings with a small upload limit."""
    return settings.with_overrides(max_upload_bytes=LIMIT)


@pytest.fixture(autouse=True)
def _initialised_store(container: Container) -> None:
    """Create the store's layout, as ``dossier init`` does in a real installation."""
    container.store.check()


def error_code(response: Any) -> str:
    """The code of the API's one error shape."""
    return str(response.get_json()["error"]["code"])


# --- hostile content ----------------------------------------------------------------------

HOSTILE = {
    "exe_named_pdf": (
        b"MZ\x90\x00\x03" + bytes(200) + b"This program cannot be run in DOS mode",
        "brief.pdf",
        415,
        "unsupported_media_type",
    ),
    "elf_named_pdf": (
        b"\x7fELF\x02\x01\x01" + bytes(300),
        "bericht.pdf",
        415,
        "unsupported_media_type",
    ),
    "pdf_polyglot_exe": (
        b"MZ" + bytes(10) + b"%PDF-1.7\n" + bytes(100),
        "scan.pdf",
        415,
        "unsupported_media_type",
    ),
    "html_named_txt": (
        b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>",
        "notiz.txt",
        415,
        "unsupported_media_type",
    ),
    "svg_named_txt": (
        b'\xef\xbb\xbf  <svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        "bild.txt",
        415,
        "unsupported_media_type",
    ),
    "zip_not_docx": (
        zip_bytes({"readme.txt": b"hello", "tool.exe": b"MZ..."}),
        "plan.docx",
        415,
        "unsupported_media_type",
    ),
    "empty_file": (b"", "leer.pdf", 422, "empty_file"),
    "nul_text": (
        b"line one\n" + b"\x00" * 50 + b"line two\n",
        "notiz.txt",
        415,
        "unsupported_media_type",
    ),
}


# Each payload is tried in turn within one test: the per-test database set-up costs far more
# than an upload, and every refusal is still checked on its own.


def test_hostile_files_refused_and_nothing_left(client, world, container):
    cid = new_case(client, world)["id"]
    for name, (data, filename, status, code) in HOSTILE.items():
        before = snapshot(container)
        response = upload(client, world, "canton", cid, data, filename=filename)
        assert (name, response.status_code, error_code(response)) == (name, status, code)
        assert_nothing_left(container, before)


def test_image_over_the_pixel_limit_refused_and_nothing_left(client, world, container):
    """The upload refuses an image the extraction could not read (one limit for both)."""
    cid = new_case(client, world)["id"]
    before = snapshot(container)
    huge = declared_png(10_000, 10_001)
    response = upload(client, world, "canton", cid, huge, filename="riesig.png")
    assert (response.status_code, error_code(response)) == (422, "damaged_file")
    assert response.get_json()["error"]["message"] == (
        "The file was refused: the image is too large (10000 × 10001 pixels; "
        "the limit is 100 million)."
    )
    assert_nothing_left(container, before)


def test_hostile_new_versions_refused_and_nothing_left(client, world, container):
    cid = new_case(client, world)["id"]
    created = upload(client, world, "canton", cid, make_png(), filename="scan.png")
    assert created.status_code == 201
    for name in ("exe_named_pdf", "html_named_txt", "zip_not_docx", "empty_file"):
        data, filename, status, code = HOSTILE[name]
        before = snapshot(container)
        response = client.post(
            f"/api/v1/documents/{created.get_json()['id']}/versions",
            data={"file": (io.BytesIO(data), filename)},
            headers=world.auth("canton"),
            content_type="multipart/form-data",
        )
        assert (name, response.status_code, error_code(response)) == (name, status, code)
        assert_nothing_left(container, before)


def test_truncated_real_pdf_is_damaged_file(client, world, container):
    full = plain_pdf()
    cid = new_case(client, world)["id"]
    before = snapshot(container)
    response = upload(
        client, world, "canton", cid, full[: len(full) * 3 // 10], filename="abgebrochen.pdf"
    )
    assert response.status_code == 422
    body = response.get_json()["error"]
    assert body["code"] == "damaged_file"
    assert "PDF" in body["message"]
    assert_nothing_left(container, before)
    # The whole file is fine, so it was the truncation that was refused.
    assert upload(client, world, "canton", cid, full, filename="ganz.pdf").status_code == 201


def test_zip_bomb_disguised_as_docx_refused(client, world, container):
    bomb = zip_bomb_docx()
    assert len(bomb) < LIMIT  # small on the wire, 20 MiB when unpacked
    cid = new_case(client, world)["id"]
    before = snapshot(container)
    response = upload(
        client, world, "canton", cid, bomb, doc_type="integration_plan", filename="plan.docx"
    )
    assert response.status_code == 415
    assert error_code(response) == "unsupported_media_type"
    assert_nothing_left(container, before)
    # The same package without the bomb is a welcome Word document.
    fine = upload(client, world, "canton", cid, docx_package(), filename="plan.docx")
    assert fine.status_code == 201, fine.get_json()


# --- size limit ---------------------------------------------------------------------------


class _HugeBody(io.RawIOBase):
    """A seekable request body of a huge announced length that counts the bytes read."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.position = 0
        self.bytes_read = 0

    def readable(self) -> bool:
        """Readable like a socket."""
        return True

    def seekable(self) -> bool:
        """Seekable, so the test client can work out the Content-Length."""
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move within the virtual body."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = base + offset
        return self.position

    def tell(self) -> int:
        """The current position."""
        return self.position

    def readinto(self, buffer: Any) -> int:
        """Hand out zeros and count them."""
        n = max(0, min(len(buffer), self.size - self.position))
        buffer[:n] = bytes(n)
        self.position += n
        self.bytes_read += n
        return n


def test_announced_oversize_refused_before_reading_body(client, world, container):
    cid = new_case(client, world)["id"]
    before = snapshot(container)
    body = _HugeBody(10 * 1024**3)
    response = client.post(
        f"/api/v1/cases/{cid}/documents",
        input_stream=body,
        content_type="multipart/form-data; boundary=xyz",
        headers=world.auth("canton"),
    )
    assert response.status_code == 413
    assert error_code(response) == "file_too_large"
    assert body.bytes_read == 0
    assert_nothing_left(container, before)


def test_oversize_discovered_while_streaming(client, world, container):
    # Content-Length stays under the announced-size check (limit + envelope allowance), so
    # only the byte count while streaming can catch it.
    data = b"Zeile mit Text.\n" * (LIMIT // 16 + 100)
    cid = new_case(client, world)["id"]
    before = snapshot(container)
    response = upload(client, world, "canton", cid, data, filename="gross.txt")
    assert response.status_code == 413
    assert error_code(response) == "file_too_large"
    assert_nothing_left(container, before)


def test_file_exactly_at_limit_accepted(client, world, container):
    data = (b"0123456789abcde\n" * (LIMIT // 16))[:LIMIT]
    cid = new_case(client, world)["id"]
    response = upload(client, world, "canton", cid, data, filename="genau.txt")
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["versions"][0]["size"] == LIMIT
    assert spool_entries(container.settings) == []


# --- malformed requests -------------------------------------------------------------------


def test_missing_file_part_is_400(client, world, container):
    cid = new_case(client, world)["id"]
    before = snapshot(container)
    response = client.post(
        f"/api/v1/cases/{cid}/documents",
        data={"type": "other", "title": "Ohne Datei"},
        headers=world.auth("canton"),
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert error_code(response) == "file_missing"
    assert_nothing_left(container, before)


NOT_MULTIPART = {
    "json": {"json": {"type": "other", "file": "JVBERi0xLjQ="}},
    "raw_pdf": {"data": b"%PDF-1.4 raw body", "content_type": "application/pdf"},
    "no_boundary": {"data": b"--xyz\r\n", "content_type": "multipart/form-data"},
    "no_content_type": {"data": b"file=abc"},
}


def test_not_multipart_is_415(client, world, container):
    cid = new_case(client, world)["id"]
    for name, kwargs in NOT_MULTIPART.items():
        before = snapshot(container)
        response = client.post(
            f"/api/v1/cases/{cid}/documents", headers=world.auth("canton"), **kwargs
        )
        assert (name, response.status_code, error_code(response)) == (
            name,
            415,
            "multipart_required",
        )
        assert_nothing_left(container, before)


def test_malformed_multipart_is_400(client, world, container):
    cid = new_case(client, world)["id"]
    before = snapshot(container)
    body = (
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nHallo Welt'
    )
    response = client.post(
        f"/api/v1/cases/{cid}/documents",
        data=body,
        content_type="multipart/form-data; boundary=xyz",
        headers=world.auth("canton"),
    )
    assert response.status_code == 400
    assert error_code(response) == "malformed_multipart"
    assert_nothing_left(container, before)


def test_bad_type_is_422(client, world, container):
    cid = new_case(client, world)["id"]
    for doc_type in ["", "invoice", "OTHER", "end_report; DROP TABLE documents"]:
        before = snapshot(container)
        response = upload(client, world, "canton", cid, make_png(), doc_type=doc_type)
        assert (doc_type, response.status_code) == (doc_type, 422)
        assert response.get_json()["error"]["field"] == "type"
        assert_nothing_left(container, before)


def test_refused_writer_is_403_before_anything_is_kept(client, world, container):
    cid = new_case(client, world)["id"]
    before = snapshot(container)
    response = upload(client, world, "auditor", cid, make_pdf("X", ["y"]))
    assert response.status_code == 403
    assert_nothing_left(container, before)


# --- names, titles and flags --------------------------------------------------------------


def raw_multipart(filename: bytes, data: bytes, **fields: str) -> tuple[bytes, str]:
    """A multipart body built by hand, so the filename's bytes reach the server unaltered."""
    boundary = "dossier-test-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f"--{boundary}\r\n".encode()
        + b'Content-Disposition: form-data; name="file"; filename="'
        + filename
        + b'"\r\n'
        + b"Content-Type: application/pdf\r\n\r\n"
        + data
        + b"\r\n"
    )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


HOSTILE_NAMES = {
    "posix_path": f"../../etc/passwd<script>x{BIDI}fdp.exe\t\x1b\x7f.pdf",
    # Backslashes escaped as the quoted-string syntax asks, so the server sees them.
    "windows_path": "C:\\\\Users\\\\x\\\\..\\\\..\\\\etc\\\\passwd<script>x\u202efdp.exe.pdf",
}


@pytest.mark.parametrize("filename", HOSTILE_NAMES.values(), ids=HOSTILE_NAMES.keys())
def test_hostile_filename_stored_sanitised_and_served_safely(
    client, world: World, container, filename
):
    cid = new_case(client, world)["id"]
    body, content_type = raw_multipart(filename.encode("utf-8"), make_pdf("X", ["y"]), type="other")
    response = client.post(
        f"/api/v1/cases/{cid}/documents",
        data=body,
        content_type=content_type,
        headers=world.auth("canton"),
    )
    assert response.status_code == 201, response.get_json()
    document = response.get_json()
    stored = document["versions"][0]["filename"]
    assert "/" not in stored and "\\" not in stored and not stored.startswith(".")
    assert not set(stored) & set(BIDI + "\t\x1b\x7f\r\n")
    assert stored.startswith("passwd<script>x")
    assert stored.endswith(".pdf")
    # Without a title, the sanitised filename is the title.
    assert document["title"] == stored
    # The storage key never derives from the name.
    (key,) = container.store.iter_keys("versions/")
    with container.db.transaction() as session:
        version_id = session.execute(select(DocumentVersion.id)).scalar_one()
    assert key == f"versions/{version_id[:2]}/{version_id}"

    content = client.get(
        f"/api/v1/documents/{document['id']}/content", headers=world.auth("canton")
    )
    assert content.status_code == 200
    disposition = content.headers["Content-Disposition"]
    assert disposition.isascii()
    assert "\r" not in disposition and "\n" not in disposition
    kind, options = parse_options_header(disposition)
    assert kind == "attachment"
    # werkzeug decodes filename* (RFC 5987) in preference to the ASCII fallback.
    assert options["filename"] == stored
    fallback = disposition.split('filename="', 1)[1].split('"', 1)[0]
    assert not set(fallback) & set('"\\;/')


def test_hostile_title_stored_without_bidi_controls(client, world: World):
    title = f"<script>alert(1)</script> ../../etc/passwd {BIDI}gnp.exe"
    cid = new_case(client, world)["id"]
    response = upload(client, world, "canton", cid, make_png(), title=title, filename="ok.png")
    assert response.status_code == 201, response.get_json()
    stored = response.get_json()["title"]
    # Markup stays literal text (escaped where it is rendered); bidi overrides, which make
    # "gnp.exe" display as "exe.png", are removed.
    assert stored == "<script>alert(1)</script> ../../etc/passwd gnp.exe"
    assert response.headers["Content-Type"].startswith("application/json")


def test_title_with_control_characters_is_422(client, world: World, container):
    cid = new_case(client, world)["id"]
    before = snapshot(container)
    response = upload(client, world, "canton", cid, make_pdf("X", ["y"]), title="Titel\x1b[31m")
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "title"
    assert_nothing_left(container, before)


def test_pdf_flags_encrypted_and_active_content(client, world: World):
    cid = new_case(client, world)["id"]

    def flags_of(data: bytes) -> dict[str, Any]:
        response = upload(client, world, "canton", cid, data, filename="dokument.pdf")
        assert response.status_code == 201, response.get_json()
        version = response.get_json()["versions"][0]
        assert version["media_type"] == "application/pdf"
        return dict(version["flags"])

    # The password-protected PDF is accepted: its contents are unknown, and it says so.
    encrypted = flags_of(encrypted_pdf())
    assert (encrypted["encrypted"], encrypted["needs_password"]) == (True, True)
    # An embedded file is active content a caseworker should be warned about.
    attached = flags_of(attachment_pdf())
    assert (attached["encrypted"], attached["active_content"]) == (False, True)
    assert "embedded_files" in attached["active_content_kinds"]
    plain = flags_of(plain_pdf())
    assert (plain["encrypted"], plain["active_content"]) == (False, False)


def test_accepted_upload_leaves_no_spool_file(client, world: World, container):
    cid = new_case(client, world)["id"]
    before = snapshot(container)
    response = upload(client, world, "canton", cid, make_docx("Plan", ["x"]), filename="plan.docx")
    assert response.status_code == 201
    after = snapshot(container)
    assert (after.documents, after.versions, len(after.objects)) == (
        before.documents + 1,
        before.versions + 1,
        len(before.objects) + 1,
    )
    assert spool_entries(container.settings) == []
