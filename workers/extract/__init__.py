"""Text extraction from untrusted uploads (PDF, DOCX, images, text) for the search index.

``extract_text`` parses PDFs, Word documents and images in a sandboxed child process (see
:mod:`dossier_service.sandbox`) with limits on memory, CPU and wall-clock time, so that a
hostile file ends as ``ok=False`` with a reason while the calling worker carries on. Plain
text is decoded in-process: that is bounded, pure-Python work.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dossier_service.files.inspect import check_image_header
from dossier_service.files.sniff import ACCEPTED_MEDIA_TYPES, DOCX, JPEG, PDF, PNG, TEXT, TIFF
from dossier_service.sandbox import SandboxOutcome, memory_limit_mb, run_in_sandbox
from workers.extract.text import MAX_TEXT_CHARS, extract_plain

__all__ = ["Extraction", "extract_text"]

logger = logging.getLogger(__name__)

_TARGETS = {
    PDF: "workers.extract.pdf:extract_pdf",
    DOCX: "workers.extract.docx:extract_docx",
    JPEG: "workers.extract.image:extract_image",
    PNG: "workers.extract.image:extract_image",
    TIFF: "workers.extract.image:extract_image",
}
_METHODS = {PDF: "text-layer", DOCX: "docx", JPEG: "image-ocr", PNG: "image-ocr"}
_METHODS.update({TIFF: "image-ocr", TEXT: "plain"})
_VALID_METHODS = frozenset({"text-layer", "ocr", "mixed", "docx", "plain", "image-ocr"})
# Tesseract language names such as "deu", "deu+eng", "chi_sim"; nothing that could become an
# option or a path.
_LANGUAGES = re.compile(r"[A-Za-z0-9_]{1,32}(\+[A-Za-z0-9_]{1,32}){0,7}")
# The result travels as JSON: up to 4 UTF-8 bytes per character (2 for an escaped newline),
# plus warnings and framing.
_MAX_OUTPUT_BYTES = 4 * MAX_TEXT_CHARS + 1024 * 1024
_MAX_WARNINGS = 50
_MAX_WARNING_CHARS = 300
# Tesseract's OpenMP threads make it several times slower on a small machine (0.7 s against
# 2.8 s for an A4 page here) and would compete with the other workers.
_CHILD_ENV = {"OMP_THREAD_LIMIT": "1"}


@dataclass
class Extraction:
    """The text of one file, or why there is none."""

    ok: bool
    text: str
    reason: str | None
    pages: int | None
    ocr_pages: int
    chars: int
    method: str
    warnings: list[str] = field(default_factory=list)


def _seconds(value: float) -> str:
    """Seconds for a reason text: "120 s", "0.5 s"."""
    return f"{value:g} s"


def _failure(media_type: str, reason: str, pages: int | None = None) -> Extraction:
    """An unsuccessful extraction."""
    return Extraction(
        ok=False,
        text="",
        reason=reason,
        pages=pages,
        ocr_pages=0,
        chars=0,
        method=_METHODS[media_type],
    )


def extract_text(
    path: str | os.PathLike[str],
    media_type: str,
    *,
    timeout_s: float = 120,
    max_memory_mb: int = 1024,
    ocr: bool = True,
    ocr_languages: str = "deu+eng",
    max_ocr_pages: int = 200,
) -> Extraction:
    """Extract the text of a stored upload of *media_type* within time and memory limits.

    *max_memory_mb* caps the address space of each process involved (the parsing child
    and, one at a time, the ``pdftoppm`` and ``tesseract`` it runs). Scanned pages and
    images are OCR'd with Tesseract in *ocr_languages*, at most *max_ocr_pages* of them.
    """
    if media_type not in ACCEPTED_MEDIA_TYPES:
        raise ValueError(f"Not an accepted media type: {media_type!r}")
    if timeout_s <= 0 or max_memory_mb <= 0 or max_ocr_pages < 0:
        raise ValueError("timeout_s and max_memory_mb must be positive, max_ocr_pages >= 0")
    if not _LANGUAGES.fullmatch(ocr_languages):
        raise ValueError(f"Not a Tesseract language list: {ocr_languages!r}")
    file_path = Path(path).resolve()
    if not file_path.is_file():
        raise FileNotFoundError(f"No such file: {file_path}")
    started = time.monotonic()
    if media_type == TEXT:
        result = _from_record(extract_plain(file_path), media_type)
    else:
        result = _extract_in_child(
            file_path,
            media_type,
            timeout_s=timeout_s,
            max_memory_mb=max_memory_mb,
            ocr=ocr,
            ocr_languages=ocr_languages,
            max_ocr_pages=max_ocr_pages,
        )
    logger.info(
        "extracted %s: ok=%s method=%s pages=%s ocr_pages=%d chars=%d in %.2f s",
        media_type,
        result.ok,
        result.method,
        result.pages,
        result.ocr_pages,
        result.chars,
        time.monotonic() - started,
    )
    return result


def _extract_in_child(
    path: Path,
    media_type: str,
    *,
    timeout_s: float,
    max_memory_mb: int,
    ocr: bool,
    ocr_languages: str,
    max_ocr_pages: int,
) -> Extraction:
    """Run the extractor for *media_type* in the sandbox and turn its outcome into a result."""
    if media_type in (JPEG, PNG, TIFF):
        # Refuse a decompression bomb from its header alone, without starting a child.
        _facts, problem = check_image_header(path, media_type)
        if problem is not None:
            return _failure(media_type, problem)
    job = {
        "path": str(path),
        "media_type": media_type,
        "ocr": ocr,
        "languages": ocr_languages,
        "max_ocr_pages": max_ocr_pages,
        "max_chars": MAX_TEXT_CHARS,
    }
    # Time for the child to stop early, assemble what it has and send it.
    margin = min(max(0.1 * timeout_s, 0.5), 5.0)
    outcome = run_in_sandbox(
        _TARGETS[media_type],
        job,
        timeout_s=timeout_s,
        max_memory_mb=max_memory_mb,
        max_output_bytes=_MAX_OUTPUT_BYTES,
        soft_deadline_margin_s=margin,
        env=_CHILD_ENV,
    )
    if outcome.status == "ok":
        return _from_record(outcome.value, media_type)
    return _failure(media_type, _reason(outcome, timeout_s, max_memory_mb))


def _reason(outcome: SandboxOutcome, timeout_s: float, max_memory_mb: int) -> str:
    """A person-readable reason for a sandbox run that did not produce a result."""
    if outcome.status == "timeout":
        return f"text extraction took longer than {_seconds(timeout_s)}"
    memory_mb = memory_limit_mb(max_memory_mb)  # with the sandbox's floor
    if outcome.status == "memory":
        return f"text extraction needs more than {memory_mb} MB of memory"
    if outcome.status == "cpu":
        return f"text extraction used {outcome.error or 'too much CPU time'}"
    if outcome.status == "killed":
        return f"text extraction was killed (the file may need more than {memory_mb} MB)"
    if outcome.status == "output":
        return "text extraction produced more output than allowed"
    if outcome.status == "error":
        logger.warning("text extraction failed with %s", outcome.error)
        return "the file could not be read: it is damaged"
    return "text extraction failed: the file made the extractor crash"


def _from_record(record: Any, media_type: str) -> Extraction:
    """Validate the child's result record (never trust what parsed a hostile file)."""
    if not isinstance(record, dict):
        return _failure(media_type, "text extraction returned an invalid result")
    ok, text, reason = record.get("ok"), record.get("text"), record.get("reason")
    pages, ocr_pages, method = record.get("pages"), record.get("ocr_pages"), record.get("method")
    warnings = record.get("warnings")
    if not (
        isinstance(ok, bool)
        and isinstance(text, str)
        and (reason is None or isinstance(reason, str))
        and (pages is None or (isinstance(pages, int) and pages >= 0))
        and isinstance(ocr_pages, int)
        and ocr_pages >= 0
        and isinstance(method, str)
        and method in _VALID_METHODS
        and isinstance(warnings, list)
        and all(isinstance(w, str) for w in warnings)
        and len(text) <= MAX_TEXT_CHARS
    ):
        return _failure(media_type, "text extraction returned an invalid result")
    if ok is False and not reason:
        reason = "the file could not be read"
    return Extraction(
        ok=ok,
        text=text if ok else "",
        reason=None if ok else reason,
        pages=pages,
        ocr_pages=ocr_pages,
        chars=len(text) if ok else 0,
        method=method,
        warnings=[w[:_MAX_WARNING_CHARS] for w in warnings[:_MAX_WARNINGS]],
    )
