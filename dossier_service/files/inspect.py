"""Inspect untrusted uploads (PDF, DOCX, images, text) with limits on time and memory."""

from __future__ import annotations

import argparse
import codecs
import json
import logging
import os
import struct
import sys
import zlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from dossier_service.files.sniff import (
    ACCEPTED_MEDIA_TYPES,
    DOCX,
    JPEG,
    PDF,
    PNG,
    TEXT,
    TIFF,
    check_docx_container,
)
from dossier_service.sandbox import SandboxOutcome, memory_limit_mb, run_in_sandbox

if TYPE_CHECKING:
    import pikepdf

__all__ = ["MAX_IMAGE_PIXELS", "FileReport", "check_image_header", "inspect_file"]

logger = logging.getLogger(__name__)


@dataclass
class FileReport:
    """Verdict on one file: ok or not, a short English reason, and JSON-serialisable facts."""

    ok: bool
    reason: str | None
    flags: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """Return the report as a JSON-serialisable dict."""
        return asdict(self)


def inspect_file(
    path: str | os.PathLike[str],
    media_type: str,
    *,
    timeout_s: float = 20,
    max_memory_mb: int = 512,
) -> FileReport:
    """Check that a stored upload really is a sound file of *media_type* and report its facts."""
    if media_type not in ACCEPTED_MEDIA_TYPES:
        raise ValueError(f"Not an accepted media type: {media_type!r}")
    if timeout_s <= 0 or max_memory_mb <= 0:
        raise ValueError("timeout_s and max_memory_mb must be positive")
    file_path = Path(path)
    if not file_path.is_file():
        raise FileNotFoundError(f"No such file: {file_path}")
    if media_type in (PDF, DOCX):
        # qpdf, zlib and libxml2 are native code fed with hostile bytes: a crash, a runaway
        # loop or a decompression bomb must end in a child we can kill, not in the worker.
        return _inspect_in_child(file_path, media_type, timeout_s, max_memory_mb)
    # Images and text are only read through bounded, pure-Python header parsing here, so a
    # child process (about 0.1 s per call) would buy nothing.
    return _inspect_local(file_path, media_type)


# --- Parent side: run the child -----------------------------------------------------------

_TARGET = "dossier_service.files.inspect:inspect_job"
# The report's flags are a few dozen small values; far more means something is wrong.
_MAX_OUTPUT_BYTES = 1024 * 1024
# Import-time address space of Python + pikepdf + python-docx is ~50 MiB; below this floor the
# child would fail before looking at the file, which would read as "damaged file".
_MIN_MEMORY_MB = 128


def _format_seconds(seconds: float) -> str:
    """Human-readable seconds for a reason text ("20 s", "0.5 s")."""
    return f"{seconds:g} s"


def _inspect_in_child(
    path: Path, media_type: str, timeout_s: float, max_memory_mb: int
) -> FileReport:
    """Run the inspection in the sandbox (:mod:`dossier_service.sandbox`) under rlimits."""
    memory_mb = memory_limit_mb(max_memory_mb, _MIN_MEMORY_MB)
    outcome = run_in_sandbox(
        _TARGET,
        {"path": str(path.resolve()), "media_type": media_type},
        timeout_s=timeout_s,
        max_memory_mb=memory_mb,
        min_memory_mb=_MIN_MEMORY_MB,
        max_output_bytes=_MAX_OUTPUT_BYTES,
    )
    logger.debug("file inspection of %s took %.3f s", media_type, outcome.elapsed_s)
    return _report_from_outcome(outcome, timeout_s, memory_mb)


def _report_from_outcome(outcome: SandboxOutcome, timeout_s: float, memory_mb: int) -> FileReport:
    """Turn how the sandboxed inspection ended into a verdict on the file."""
    if outcome.status == "ok":
        report = _report_from_value(outcome.value)
        if report is not None:
            return report
        logger.warning("file inspection child returned an invalid report")
    elif outcome.status == "timeout":
        return FileReport(
            False,
            f"inspection took longer than {_format_seconds(timeout_s)}",
            {"timed_out": True},
        )
    elif outcome.status == "memory":
        return FileReport(
            False,
            f"the file needs more than {memory_mb} MB of memory to inspect",
            {"memory_exceeded": True},
        )
    elif outcome.status == "error":
        # Whatever a parser throws on hostile input is a verdict about the file.
        return FileReport(
            False, "the file could not be inspected: it is damaged", {"error": outcome.error}
        )
    elif outcome.status == "output":
        return FileReport(False, "inspection produced more output than allowed", {})
    flags: dict[str, object] = {"exit_code": outcome.returncode}
    if outcome.status == "cpu":
        return FileReport(False, f"inspection used {outcome.error or 'too much CPU time'}", flags)
    if outcome.status == "killed":
        # Not our timeout (reported as such): the kernel's OOM killer or an operator.
        return FileReport(
            False, f"inspection was killed (the file may need more than {memory_mb} MB)", flags
        )
    return FileReport(False, "inspection failed: the file made the checker crash", flags)


def _report_from_value(value: object) -> FileReport | None:
    """Validate the child's report (never trust what parsed a hostile file); None if bad."""
    if (
        isinstance(value, dict)
        and isinstance(value.get("ok"), bool)
        and (value.get("reason") is None or isinstance(value.get("reason"), str))
        and isinstance(value.get("flags"), dict)
    ):
        return FileReport(value["ok"], value["reason"], value["flags"])
    return None


# --- Child side ---------------------------------------------------------------------------


def inspect_job(job: dict[str, Any]) -> dict[str, object]:
    """Sandbox target: inspect ``job["path"]`` as ``job["media_type"]``; the report as a dict."""
    # Exceptions travel to the sandbox, which reports memory exhaustion apart from the rest.
    return _inspect_untrusted(Path(job["path"]), str(job["media_type"])).to_dict()


def _inspect_untrusted(path: Path, media_type: str) -> FileReport:
    """Dispatch to the parser for *media_type* (runs inside the sandboxed child)."""
    if media_type not in ACCEPTED_MEDIA_TYPES:
        return FileReport(False, "the file type is not accepted", {})
    if media_type == PDF:
        return _inspect_pdf(path)
    if media_type == DOCX:
        return _inspect_docx(path)
    return _inspect_local(path, media_type)


# --- PDF ----------------------------------------------------------------------------------

_PDF_UNREADABLE = "the PDF could not be opened: it is damaged or not a PDF"
_MAX_SCAN_OBJECTS = 200_000
# About 1-6 µs per visited value: two million keep the scan of a hostile PDF to seconds.
_MAX_SCAN_VALUES = 2_000_000
_MAX_PAGES_CHECKED = 5_000
_EOF_WINDOW = 1024
# qpdf's warning when it rebuilds the cross-reference table while resolving objects.
_RECONSTRUCTED = "reconstruct cross-reference table"


def _pdf_header_version(path: Path) -> str | None:
    """Version from the ``%PDF-x.y`` header (for files pikepdf cannot open)."""
    with path.open("rb") as f:
        head = f.read(1024)
    pos = head.find(b"%PDF-")
    if pos < 0:
        return None
    version = head[pos + 5 : pos + 8]
    return version.decode("ascii") if version[:1].isdigit() and version[1:2] == b"." else None


def _has_eof_marker(path: Path) -> bool:
    """Tell whether ``%%EOF`` appears near the end (missing means the file was cut off)."""
    with path.open("rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - _EOF_WINDOW))
        return b"%%EOF" in f.read()


def _inspect_pdf(path: Path) -> FileReport:
    """Open a PDF with pikepdf; report pages, encryption, repair and active content."""
    import pikepdf

    flags: dict[str, object] = {
        "pdf_version": _pdf_header_version(path),
        "encrypted": False,
        "needs_password": False,
        "pages": None,
        "repaired": False,
        "parser_warnings": 0,
        "active_content": None,
        "active_content_kinds": [],
        "has_forms": None,
        "has_xfa": None,
        "form_fields": None,
        "objects_scanned": 0,
        "scan_truncated": False,
    }
    # First without recovery, so we know whether qpdf had to rebuild the cross-reference
    # table: readers disagree about rebuilt files, and a truncated upload looks like one.
    try:
        pdf = pikepdf.open(path, attempt_recovery=False)
    except pikepdf.PasswordError:
        return _password_report(flags)
    except Exception as exc:
        _raise_if_out_of_memory(exc)
        flags["repaired"] = True  # qpdf could not even read the cross-reference table
    else:
        try:
            with pdf:
                report = _examine_open_pdf(pdf, path, dict(flags), recovering=False)
            if report.ok:
                return report
        except Exception as exc:
            _raise_if_out_of_memory(exc)  # anything else: retried with recovery just below
        # Without recovery qpdf also fails lazily (an object not at its xref offset); the
        # second pass below tells a repairable file from a broken one.
    try:
        pdf = pikepdf.open(path, attempt_recovery=True)
    except pikepdf.PasswordError:
        return _password_report(flags)
    except Exception as exc:
        _raise_if_out_of_memory(exc)
        flags["error"] = type(exc).__name__
        return FileReport(False, _PDF_UNREADABLE, flags)
    with pdf:
        return _examine_open_pdf(pdf, path, flags, recovering=True)


def _raise_if_out_of_memory(exc: BaseException) -> None:
    """Re-raise memory exhaustion, which qpdf reports as a PdfError saying std::bad_alloc."""
    if isinstance(exc, MemoryError):
        raise exc
    if "bad_alloc" in str(exc):
        raise MemoryError from exc


def _password_report(flags: dict[str, object]) -> FileReport:
    """An encrypted PDF we cannot open: acceptable, but its contents are unknown."""
    flags.update(encrypted=True, needs_password=True)
    return FileReport(True, None, flags)


def _examine_open_pdf(
    pdf: pikepdf.Pdf, path: Path, flags: dict[str, object], *, recovering: bool
) -> FileReport:
    """Checks on an opened PDF: page tree, page contents, active content, forms."""
    flags["pdf_version"] = str(pdf.pdf_version)
    flags["encrypted"] = bool(pdf.is_encrypted)
    # A file that needs recovery and lacks the final %%EOF is an interrupted upload: qpdf
    # would happily rebuild whatever part of it arrived.
    if recovering and not _has_eof_marker(path):
        return FileReport(False, "the PDF is incomplete: the file was cut off", flags)
    report = _examine_pages_and_content(pdf, flags)
    if recovering and any(_RECONSTRUCTED in warning for warning in pdf.get_warnings()):
        flags["repaired"] = True
    return report


def _examine_pages_and_content(pdf: pikepdf.Pdf, flags: dict[str, object]) -> FileReport:
    """Page tree, page contents, active content and forms of an opened PDF."""
    try:
        page_count = len(pdf.pages)
    except Exception as exc:
        _raise_if_out_of_memory(exc)
        flags["error"] = type(exc).__name__
        return FileReport(False, "the PDF is damaged: its page tree cannot be read", flags)
    flags["pages"] = page_count
    if page_count == 0:
        return FileReport(False, "the PDF has no pages", flags)
    damaged_page = _first_unreadable_page(pdf, page_count)
    if damaged_page is not None:
        return FileReport(False, f"the PDF is damaged: page {damaged_page} cannot be read", flags)

    kinds, forms = _catalog_facts(pdf)
    scanned, truncated = _scan_objects(pdf, kinds)
    flags.update(
        active_content=bool(kinds),
        active_content_kinds=sorted(kinds),
        has_forms=forms["has_forms"],
        has_xfa=forms["has_xfa"],
        form_fields=forms["form_fields"],
        objects_scanned=scanned,
        scan_truncated=truncated,
        parser_warnings=len(pdf.get_warnings()),
    )
    return FileReport(True, None, flags)


def _first_unreadable_page(pdf: pikepdf.Pdf, page_count: int) -> int | None:
    """Decode each page's content streams; return the first page number that fails."""
    import pikepdf

    # A rebuilt file often keeps its page tree but lost the objects the pages point to;
    # qpdf then hands back null. Decoding also catches corrupt Flate data.
    for number in range(min(page_count, _MAX_PAGES_CHECKED)):
        try:
            contents = pdf.pages[number].obj.get("/Contents")
            if contents is None:
                continue  # an empty page is legal
            streams = list(contents) if isinstance(contents, pikepdf.Array) else [contents]
            for stream in streams:
                if not isinstance(stream, pikepdf.Stream):
                    return number + 1
                stream.read_bytes()
        except Exception as exc:
            _raise_if_out_of_memory(exc)
            return number + 1
    return None


def _catalog_facts(pdf: pikepdf.Pdf) -> tuple[set[str], dict[str, Any]]:
    """Active content and forms declared in the document catalog (cheap, always complete)."""
    import pikepdf

    kinds: set[str] = set()
    root = pdf.Root
    # The document-level actions run on opening; check them even if the scan stops early.
    triggers = root.get("/AA")
    actions = [root.get("/OpenAction")]
    if isinstance(triggers, pikepdf.Dictionary):
        actions.extend(triggers.values())
    for action in actions:
        if isinstance(action, pikepdf.Dictionary):
            _classify(action, kinds)
    names = root.get("/Names")
    if isinstance(names, pikepdf.Dictionary):
        if "/JavaScript" in names:
            kinds.add("javascript")
        if "/EmbeddedFiles" in names:
            kinds.add("embedded_files")
    # files.json counts an /AcroForm even without fields as a form, and so do we.
    forms: dict[str, Any] = {"has_forms": False, "has_xfa": False, "form_fields": 0}
    acroform = root.get("/AcroForm")
    if isinstance(acroform, pikepdf.Dictionary):
        fields = acroform.get("/Fields")
        forms.update(
            has_forms=True,
            has_xfa="/XFA" in acroform,
            form_fields=len(fields) if isinstance(fields, pikepdf.Array) else 0,
        )
    return kinds, forms


def _scan_objects(pdf: pikepdf.Pdf, kinds: set[str]) -> tuple[int, bool]:
    """Look through (at most 200,000) objects for JavaScript, Launch and embedded files."""
    import pikepdf

    scanned = 0
    budget = _MAX_SCAN_VALUES
    for (number, generation), entry in pdf.get_xref_table().items():
        if entry.type == 0:  # free entry
            continue
        if scanned >= _MAX_SCAN_OBJECTS:
            return scanned, True
        scanned += 1
        try:
            obj = pdf.get_object(number, generation)
        except Exception as exc:
            _raise_if_out_of_memory(exc)
            continue  # an unreadable object cannot carry an action
        # Walk the object and what is nested *directly* in it. Indirect references are not
        # followed: each indirect object gets its own turn in this loop, so following them
        # would only repeat work (and could loop).
        stack = [obj]
        while stack:
            item = stack.pop()
            if isinstance(item, pikepdf.Stream):
                item = item.stream_dict
            if isinstance(item, pikepdf.Dictionary):
                _classify(item, kinds)
                children: Iterable[object] = item.values()
            elif isinstance(item, pikepdf.Array):
                children = item
            else:
                continue
            for child in children:
                # Every value counts, so a huge inline array cannot stretch the scan.
                budget -= 1
                if budget <= 0:
                    return scanned, True
                if isinstance(child, pikepdf.Dictionary | pikepdf.Array) and not child.is_indirect:
                    stack.append(child)
    return scanned, False


def _classify(dictionary: pikepdf.Dictionary, kinds: set[str]) -> None:
    """Add the active-content kinds one dictionary represents."""
    import pikepdf

    keys = dictionary.keys()
    action = dictionary.get("/S")
    # /JS appears in JavaScript and Rendition actions and in the /Names JavaScript tree.
    if "/JS" in keys or action == pikepdf.Name.JavaScript:
        kinds.add("javascript")
    if action == pikepdf.Name.Launch:
        kinds.add("launch")
    if (
        "/EF" in keys
        or dictionary.get("/Type") == pikepdf.Name.EmbeddedFile
        or dictionary.get("/Subtype") == pikepdf.Name.FileAttachment
    ):
        kinds.add("embedded_files")


# --- DOCX ---------------------------------------------------------------------------------


def _inspect_docx(path: Path) -> FileReport:
    """Open a DOCX with python-docx after the zip-bomb checks; report content and risks."""
    problem = check_docx_container(path)
    if problem is not None:
        return FileReport(False, problem, {})
    import zipfile

    import docx

    try:
        document = docx.Document(str(path))
        paragraphs = len(document.paragraphs)
        tables = len(document.tables)
        external_kinds: list[str] = []
        for rel in document.part.package.iter_rels():
            if rel.is_external:
                external_kinds.append(rel.reltype.rsplit("/", 1)[-1])
    except Exception as exc:
        _raise_if_out_of_memory(exc)
        return FileReport(
            False,
            "the Word document could not be opened: it is damaged",
            {"error": type(exc).__name__},
        )
    with zipfile.ZipFile(path) as archive:
        names = [name.lower() for name in archive.namelist()]
    flags: dict[str, object] = {
        "paragraphs": paragraphs,
        "tables": tables,
        "has_macros": any(name.endswith("vbaproject.bin") for name in names),
        "has_activex": any(name.startswith("word/activex/") for name in names),
        "embedded_objects": sum(1 for name in names if name.startswith("word/embeddings/")),
        # Hyperlinks are common; an external attachedTemplate or oleObject is how remote
        # template injection works, so the kinds are reported, not just the count.
        "external_links": len(external_kinds),
        "external_link_kinds": sorted(set(external_kinds)),
    }
    return FileReport(True, None, flags)


# --- Images and text (pure Python, bounded reads) -----------------------------------------

#: Images declaring more pixels than this are refused, at upload and again before text
#: extraction decodes anything: one limit, so an accepted image can always be read.
MAX_IMAGE_PIXELS = 100_000_000
_MAX_JPEG_SEGMENTS = 1_000
_MAX_TIFF_PAGES = 10_000
_MAX_TIFF_ENTRIES = 4_096
_TEXT_READ_LIMIT = 8 * 1024 * 1024
_TEXT_CHUNK = 64 * 1024


class _Damaged(Exception):
    """Internal: an image header is inconsistent or cut off."""


def _read_exact(f: IO[bytes], size: int) -> bytes:
    """Read exactly *size* bytes or raise :class:`_Damaged`."""
    data = f.read(size)
    if len(data) != size:
        raise _Damaged
    return data


def _inspect_local(path: Path, media_type: str) -> FileReport:
    """Header checks for images and a bounded UTF-8 check for text."""
    if media_type == TEXT:
        return _inspect_text(path)
    facts, problem = check_image_header(path, media_type)
    return FileReport(problem is None, problem, facts or {})


def check_image_header(path: Path, media_type: str) -> tuple[dict[str, object] | None, str | None]:
    """Read an image's declared size without decoding it; (facts, refusal reason or None)."""
    label = _IMAGE_LABELS[media_type]
    try:
        with path.open("rb") as f:
            facts = _IMAGE_READERS[media_type](f)
    except (_Damaged, struct.error, OSError):
        return None, f"the {label} image is damaged or incomplete"
    width, height = facts["width"], facts["height"]
    if not isinstance(width, int) or not isinstance(height, int):
        return None, f"the {label} image is damaged or incomplete"
    if width * height > MAX_IMAGE_PIXELS:
        return facts, (
            f"the image is too large ({width} × {height} pixels; the limit is "
            f"{MAX_IMAGE_PIXELS // 1_000_000} million)"
        )
    return facts, None


def _png_facts(f: IO[bytes]) -> dict[str, object]:
    """Size and depth from the IHDR chunk; whether the file ends with IEND."""
    head = _read_exact(f, 33)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[8:16] != b"\x00\x00\x00\x0dIHDR":
        raise _Damaged
    if zlib.crc32(head[12:29]) != struct.unpack(">I", head[29:33])[0]:
        raise _Damaged
    width, height, bit_depth, color_type = struct.unpack(">IIBB", head[16:26])
    if not (0 < width < 2**31 and 0 < height < 2**31):
        raise _Damaged
    f.seek(-12, os.SEEK_END)
    complete = f.read(12) == b"\x00\x00\x00\x00IEND\xaeB`\x82"
    return {
        "width": width,
        "height": height,
        "bit_depth": bit_depth,
        "color_type": color_type,
        "complete": complete,
    }


# SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC), which share the range.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_facts(f: IO[bytes]) -> dict[str, object]:
    """Size and components from the first SOF segment; whether the file ends with EOI."""
    if _read_exact(f, 2) != b"\xff\xd8":
        raise _Damaged
    for _ in range(_MAX_JPEG_SEGMENTS):
        marker = _read_exact(f, 2)
        if marker[0] != 0xFF:
            raise _Damaged
        code = marker[1]
        while code == 0xFF:  # fill bytes before a marker are allowed
            code = _read_exact(f, 1)[0]
        if code == 0x01 or 0xD0 <= code <= 0xD7:  # markers without a length
            continue
        if code in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            raise _Damaged
        (length,) = struct.unpack(">H", _read_exact(f, 2))
        if length < 2:
            raise _Damaged
        if code in _JPEG_SOF:
            precision, height, width, components = struct.unpack(">BHHB", _read_exact(f, 6))
            if width == 0:
                raise _Damaged
            f.seek(-2, os.SEEK_END)
            complete = f.read(2) == b"\xff\xd9"
            return {
                "width": width,
                "height": height,
                "components": components,
                "bit_depth": precision,
                "progressive": code in (0xC2, 0xC6, 0xCA, 0xCE),
                "complete": complete,
            }
        f.seek(length - 2, os.SEEK_CUR)
    raise _Damaged


def _tiff_facts(f: IO[bytes]) -> dict[str, object]:
    """Size of the first image and the number of pages (IFDs) of a TIFF."""
    size = f.seek(0, os.SEEK_END)
    f.seek(0)
    head = _read_exact(f, 8)
    order = {b"II": "<", b"MM": ">"}.get(head[:2])
    if order is None or struct.unpack(order + "H", head[2:4])[0] != 42:
        raise _Damaged
    (offset,) = struct.unpack(order + "I", head[4:8])
    width = height = None
    pages = 0
    seen: set[int] = set()
    while offset:
        if offset in seen or offset + 2 > size:
            raise _Damaged  # IFD loop or pointer past the end
        if pages >= _MAX_TIFF_PAGES:
            break
        seen.add(offset)
        f.seek(offset)
        (count,) = struct.unpack(order + "H", _read_exact(f, 2))
        if count == 0 or count > _MAX_TIFF_ENTRIES:
            raise _Damaged
        entries = _read_exact(f, count * 12)
        if pages == 0:
            for i in range(count):
                tag, kind, _n = struct.unpack_from(order + "HHI", entries, i * 12)
                if tag not in (256, 257):
                    continue
                if kind == 3:  # SHORT
                    (value,) = struct.unpack_from(order + "H", entries, i * 12 + 8)
                elif kind == 4:  # LONG
                    (value,) = struct.unpack_from(order + "I", entries, i * 12 + 8)
                else:
                    raise _Damaged
                if tag == 256:
                    width = value
                else:
                    height = value
        (offset,) = struct.unpack(order + "I", _read_exact(f, 4))
        pages += 1
    if not width or not height:
        raise _Damaged
    return {"width": width, "height": height, "pages": pages, "pages_truncated": bool(offset)}


_IMAGE_READERS: dict[str, Callable[[IO[bytes]], dict[str, object]]] = {
    PNG: _png_facts,
    JPEG: _jpeg_facts,
    TIFF: _tiff_facts,
}
_IMAGE_LABELS = {PNG: "PNG", JPEG: "JPEG", TIFF: "TIFF"}


def _inspect_text(path: Path) -> FileReport:
    """Check (the first 8 MiB of) a text file is UTF-8 without NUL bytes; count characters."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    chars = 0
    read = 0
    with path.open("rb") as f:
        try:
            while read < _TEXT_READ_LIMIT:
                chunk = f.read(min(_TEXT_CHUNK, _TEXT_READ_LIMIT - read))
                if not chunk:
                    break
                if b"\x00" in chunk:
                    return FileReport(False, "the text file contains NUL bytes: it is not text", {})
                read += len(chunk)
                chars += len(decoder.decode(chunk))
            truncated = bool(f.read(1))
            # At the read limit a character may be cut in two; only the real end is final.
            if not truncated:
                chars += len(decoder.decode(b"", final=True))
        except UnicodeDecodeError:
            return FileReport(False, "the text file is not valid UTF-8", {})
    if chars == 0:
        return FileReport(False, "the text file is empty", {"chars": 0})
    return FileReport(True, None, {"chars": chars, "chars_truncated": truncated})


# --- Command line -------------------------------------------------------------------------

_RESULT_PREFIX = "DOSSIER-INSPECT-RESULT "


def main(argv: list[str] | None = None) -> int:
    """``python -m dossier_service.files.inspect PATH MEDIA_TYPE``: print the sandboxed verdict."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout-s", type=float, default=20)
    parser.add_argument("--max-memory-mb", type=int, default=512)
    parser.add_argument("path")
    parser.add_argument("media_type")
    args = parser.parse_args(argv)
    try:
        report = inspect_file(
            args.path, args.media_type, timeout_s=args.timeout_s, max_memory_mb=args.max_memory_mb
        )
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    sys.stdout.write(_RESULT_PREFIX + json.dumps(report.to_dict(), ensure_ascii=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
