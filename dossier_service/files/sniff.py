"""Identify an upload's type from its first bytes; never trust the client's name or type."""

from __future__ import annotations

import codecs
import os
import struct
import unicodedata
import xml.parsers.expat
import zipfile
from pathlib import Path

__all__ = [
    "ACCEPTED_MEDIA_TYPES",
    "DOCX",
    "HEAD_SIZE",
    "JPEG",
    "PDF",
    "PNG",
    "TEXT",
    "TIFF",
    "ZIP",
    "check_docx_container",
    "confirm_docx",
    "extension_for",
    "sniff_file",
    "sniff_media_type",
]

PDF = "application/pdf"
JPEG = "image/jpeg"
PNG = "image/png"
TIFF = "image/tiff"
TEXT = "text/plain"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
#: Provisional answer of :func:`sniff_media_type`; only :func:`confirm_docx` turns it into DOCX.
ZIP = "application/zip"

#: The types the dossier accepts. ``application/zip`` is deliberately not among them.
ACCEPTED_MEDIA_TYPES: frozenset[str] = frozenset({PDF, JPEG, PNG, TIFF, DOCX, TEXT})

_EXTENSIONS: dict[str, str] = {
    PDF: ".pdf",
    JPEG: ".jpg",
    PNG: ".png",
    TIFF: ".tif",
    DOCX: ".docx",
    TEXT: ".txt",
}

#: How many leading bytes the sniffer looks at.
HEAD_SIZE = 8 * 1024
# PDF readers accept junk before the header (ISO 32000 tolerance); Acrobat looks 1024 bytes in.
_PDF_HEADER_WINDOW = 1024
_UTF8_BOM = codecs.BOM_UTF8

# Formats that are refused outright, checked before anything else so that a polyglot (say an
# EXE with "%PDF-" in its first kilobyte) is never accepted as the harmless-looking type.
_REFUSED_PREFIXES: tuple[bytes, ...] = (
    b"MZ",  # Windows/DOS executable (a text starting with "MZ" is refused too: rare, harmless)
    b"\x7fELF",  # Linux executable
    b"\xfe\xed\xfa\xce",  # Mach-O 32
    b"\xfe\xed\xfa\xcf",  # Mach-O 64
    b"\xce\xfa\xed\xfe",  # Mach-O 32, little endian
    b"\xcf\xfa\xed\xfe",  # Mach-O 64, little endian
    b"\xca\xfe\xba\xbe",  # Mach-O universal / Java class
    b"\x00asm",  # WebAssembly
    b"#!",  # scripts
    b"%!PS",  # PostScript is a program
    b"{\\rtf",  # RTF (may embed OLE objects)
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",  # OLE: .doc, .xls, encrypted OOXML, .msg
    b"GIF87a",
    b"GIF89a",
)
# Markup that a browser could render as active content: never "text/plain".
_MARKUP_PREFIXES: tuple[bytes, ...] = (
    b"<!doctype",
    b"<html",
    b"<head",
    b"<body",
    b"<svg",
    b"<?xml",
    b"<script",
    b"<iframe",
    b"<object",
    b"<embed",
    b"<meta",
    b"<style",
    b"<!--",
)
# Control characters tolerated in text files: whitespace, form feed, DOS end-of-file.
_TEXT_CONTROLS_OK = frozenset("\t\n\r\f\v\x1a")


def _is_markup(head: bytes) -> bool:
    """Tell whether *head* starts (after a BOM and whitespace) like HTML, SVG or XML."""
    body = head.removeprefix(_UTF8_BOM).lstrip(b" \t\r\n\f\v")
    start = body[:16].lower()
    return start.startswith(_MARKUP_PREFIXES)


def _is_text(head: bytes) -> bool:
    """Tell whether *head* is UTF-8 text without NUL bytes and nearly all printable."""
    body = head.removeprefix(_UTF8_BOM)
    if not body or b"\x00" in body:
        return False
    try:
        # final=False: the head may cut a multi-byte character at its very end; the decoder
        # keeps that tail pending instead of failing. Invalid bytes anywhere else still fail.
        text = codecs.getincrementaldecoder("utf-8")().decode(body, final=False)
    except UnicodeDecodeError:
        return False
    if not text:
        return False
    controls = sum(
        1 for c in text if c not in _TEXT_CONTROLS_OK and unicodedata.category(c) == "Cc"
    )
    # "Mostly printable": at most 1 % stray control characters (old files carry a few).
    return controls * 100 <= len(text)


def sniff_media_type(head: bytes) -> str | None:
    """Identify an accepted type from the first bytes (at most 8 KiB are looked at)."""
    head = bytes(head[:HEAD_SIZE])
    if not head or head.startswith(_REFUSED_PREFIXES):
        return None
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return TIFF
    if head.startswith(b"PK\x03\x04"):
        # Only provisional: confirm_docx() must find a real Word document inside.
        return ZIP
    if _is_markup(head):
        return None
    if b"%PDF-" in head[:_PDF_HEADER_WINDOW]:
        return PDF
    if _is_text(head):
        return TEXT
    return None


def extension_for(media_type: str) -> str:
    """Return the file extension (with dot) used for an accepted media type."""
    try:
        return _EXTENSIONS[media_type]
    except KeyError:
        raise ValueError(f"Not an accepted media type: {media_type!r}") from None


# --- DOCX confirmation --------------------------------------------------------------------

_MAX_ZIP_ENTRIES = 10_000
_MAX_UNCOMPRESSED_TOTAL = 512 * 1024 * 1024
_RATIO_CHECK_MIN_SIZE = 1024 * 1024
_MAX_RATIO = 200
# 10,000 entries with generous names fit in far less; a bigger directory is an attack.
_MAX_CENTRAL_DIRECTORY = 16 * 1024 * 1024
_MAX_CONTENT_TYPES_SIZE = 1024 * 1024
_DOCX_MAIN_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
_CONTENT_TYPES_NS = "http://schemas.openxmlformats.org/package/2006/content-types"

_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_ZIP64_EOCD_SIGNATURE = b"PK\x06\x06"

_NOT_A_ZIP = "the file is not a ZIP container"
_DAMAGED_ZIP = "the ZIP container is damaged"
_NOT_DOCX = "the ZIP container is not a Word document (DOCX)"


class _Refused(Exception):
    """Internal: carries the person-readable reason a container was refused."""


def _central_directory_size(path: Path) -> tuple[int, int]:
    """Read (entry count, directory bytes) from the end record, before zipfile parses it."""
    # zipfile loads the whole central directory into memory; a hostile archive could declare
    # millions of entries. The end record is 22 bytes, so this check costs one small read.
    with path.open("rb") as f:
        size = f.seek(0, os.SEEK_END)
        tail_size = min(size, _EOCD.size + 0xFFFF + _ZIP64_LOCATOR.size)
        f.seek(size - tail_size)
        tail = f.read(tail_size)
        pos = tail.rfind(_EOCD_SIGNATURE)
        if pos < 0 or pos + _EOCD.size > len(tail):
            raise _Refused(_NOT_A_ZIP)
        _, _, _, _, entries, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, pos)
        if entries != 0xFFFF and cd_size != 0xFFFFFFFF and cd_offset != 0xFFFFFFFF:
            return entries, cd_size
        # ZIP64: the real numbers sit in the ZIP64 end record named by the locator.
        loc = pos - _ZIP64_LOCATOR.size
        if loc < 0:
            raise _Refused(_DAMAGED_ZIP)
        sig, _, record_offset, _ = _ZIP64_LOCATOR.unpack_from(tail, loc)
        if sig != _ZIP64_LOCATOR_SIGNATURE or record_offset + _ZIP64_EOCD.size > size:
            raise _Refused(_DAMAGED_ZIP)
        f.seek(record_offset)
        record = f.read(_ZIP64_EOCD.size)
        fields = _ZIP64_EOCD.unpack(record)
        if fields[0] != _ZIP64_EOCD_SIGNATURE:
            raise _Refused(_DAMAGED_ZIP)
        return fields[7], fields[8]


def _main_part_names(content_types: bytes) -> list[str]:
    """Return the part names that [Content_Types].xml declares as a Word main document."""
    found: list[str] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        if name == f"{_CONTENT_TYPES_NS} Override":
            content_type = attrs.get("ContentType", "").strip().lower()
            if content_type == _DOCX_MAIN_TYPE:
                found.append(attrs.get("PartName", ""))

    def refuse_dtd(*_args: object) -> None:
        # OOXML forbids DTDs; refusing them rules out entity-expansion tricks entirely.
        raise _Refused(_NOT_DOCX)

    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    parser.StartElementHandler = start
    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.EntityDeclHandler = refuse_dtd
    try:
        parser.Parse(content_types, True)
    except xml.parsers.expat.ExpatError:
        raise _Refused(_NOT_DOCX) from None
    return found


def _check_docx(path: Path) -> None:
    """Raise :class:`_Refused` unless *path* is a plausible, bounded DOCX package."""
    entries, cd_size = _central_directory_size(path)
    if entries > _MAX_ZIP_ENTRIES:
        raise _Refused(f"the ZIP container has more than {_MAX_ZIP_ENTRIES:,} entries")
    if cd_size > _MAX_CENTRAL_DIRECTORY:
        raise _Refused("the ZIP container's directory is too large")
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            if len(infos) > _MAX_ZIP_ENTRIES:
                raise _Refused(f"the ZIP container has more than {_MAX_ZIP_ENTRIES:,} entries")
            by_name: dict[str, zipfile.ZipInfo] = {}
            total = 0
            for info in infos:
                # Part names are case-insensitive in OPC; two entries differing only in case
                # would let different readers see different documents.
                key = info.filename.lower()
                if key in by_name:
                    raise _Refused(_DAMAGED_ZIP)
                by_name[key] = info
                if info.flag_bits & 0x1:
                    raise _Refused(_NOT_DOCX)  # encrypted entries never occur in DOCX
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise _Refused(_NOT_DOCX)
                # Declared sizes are what zipfile will let a reader inflate, so checking them
                # bounds everything read later (python-docx reads through zipfile).
                total += info.file_size
                if total > _MAX_UNCOMPRESSED_TOTAL:
                    raise _Refused("the ZIP container would unpack to more than 512 MiB")
                ratio_limit = _MAX_RATIO * max(info.compress_size, 1)
                if info.file_size > _RATIO_CHECK_MIN_SIZE and info.file_size > ratio_limit:
                    raise _Refused(
                        f"the ZIP container holds an entry compressed more than {_MAX_RATIO}:1"
                        " (possible zip bomb)"
                    )
            ct_info = by_name.get("[content_types].xml")
            if ct_info is None or ct_info.file_size > _MAX_CONTENT_TYPES_SIZE:
                raise _Refused(_NOT_DOCX)
            content_types = archive.read(ct_info)
    except _Refused:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, struct.error):
        raise _Refused(_DAMAGED_ZIP) from None
    except (ValueError, NotImplementedError, RuntimeError, KeyError):
        raise _Refused(_DAMAGED_ZIP) from None

    # Word Online names the main part word/document2.xml (or document22.xml), so the main part
    # is whatever [Content_Types].xml declares, as the OPC standard intends.
    main_parts = _main_part_names(content_types)
    if not main_parts:
        raise _Refused(_NOT_DOCX)
    for part_name in main_parts:
        if part_name.lstrip("/").lower() not in by_name:
            raise _Refused(_NOT_DOCX)


def check_docx_container(path: str | os.PathLike[str]) -> str | None:
    """Return why *path* is not an acceptable DOCX package, or None when it is one."""
    try:
        _check_docx(Path(path))
    except _Refused as refused:
        return str(refused)
    except OSError:
        return "the file could not be read"
    return None


def confirm_docx(path: str | os.PathLike[str]) -> bool:
    """Confirm that a ZIP upload is a real Word document within the zip-bomb limits."""
    return check_docx_container(path) is None


def sniff_file(path: str | os.PathLike[str]) -> str | None:
    """Sniff a stored file's head and confirm DOCX packages; returns an accepted type or None."""
    with Path(path).open("rb") as f:
        head = f.read(HEAD_SIZE)
    media_type = sniff_media_type(head)
    if media_type == ZIP:
        return DOCX if confirm_docx(path) else None
    return media_type
