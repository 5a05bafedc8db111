"""Normalisation and capping of extracted text, and reading of plain-text files."""

from __future__ import annotations

import codecs
import re
import unicodedata
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_TEXT_CHARS",
    "TextCollector",
    "decode_plain",
    "extract_plain",
    "normalize_text",
    "result_record",
]

#: Extracted text is cut off after this many characters (about 5 MB of German text).
MAX_TEXT_CHARS = 5_000_000
# A plain-text file is read up to this many bytes: 4 bytes are the most one character takes.
_PLAIN_READ_LIMIT = 4 * MAX_TEXT_CHARS

# Line and paragraph separators become real line breaks before whitespace is collapsed.
_BREAKS = str.maketrans(
    {"\r": "\n", "\v": "\n", "\x85": "\n", "\u2028": "\n", "\f": "\n\n", "\u2029": "\n\n"}
)
# Control characters (but tab and newline), lone surrogates, and invisible characters that
# split words for a search index: soft hyphen, zero-width space, byte order mark.
_DROP = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u200b\ufeff\ud800-\udfff]")
_SPACES = re.compile(r"[^\S\n]+")  # any whitespace except a line break
_SPACE_AROUND_BREAK = re.compile(r" ?\n ?")
_BLANK_LINES = re.compile(r"\n{3,}")


def normalize_text(text: str) -> str:
    """NFC, no control characters, single spaces, at most one blank line between paragraphs."""
    if not text:
        return ""
    text = text.replace("\r\n", "\n").translate(_BREAKS)
    text = _DROP.sub("", text)
    text = unicodedata.normalize("NFC", text)
    text = _SPACES.sub(" ", text)
    text = _SPACE_AROUND_BREAK.sub("\n", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


class TextCollector:
    """Collects normalised text blocks up to a character limit."""

    def __init__(self, max_chars: int = MAX_TEXT_CHARS) -> None:
        """Start empty, accepting at most *max_chars* characters."""
        self.max_chars = max_chars
        self._parts: list[str] = []
        self._size = 0
        self.truncated = False

    @property
    def full(self) -> bool:
        """Whether the limit has been reached (later blocks are dropped)."""
        return self.truncated

    def add(self, text: str) -> None:
        """Append one block (say a page) after normalising it; blocks are blank-line apart."""
        text = normalize_text(text)
        if not text or self.truncated:
            return
        separator = 2 if self._parts else 0
        room = self.max_chars - self._size - separator
        if len(text) > room:
            self.truncated = True
            text = text[: max(room, 0)].rstrip()
            if not text:
                return
        self._parts.append(text)
        self._size += len(text) + separator

    def text(self) -> str:
        """The collected text."""
        return "\n\n".join(self._parts)

    def warnings(self) -> list[str]:
        """A warning if text was cut off."""
        if self.truncated:
            return [f"the text was cut off after {self.max_chars:,} characters"]
        return []


def result_record(
    *,
    ok: bool,
    method: str,
    text: str = "",
    reason: str | None = None,
    pages: int | None = None,
    ocr_pages: int = 0,
    warnings: list[str] | None = None,
) -> dict[str, Any]:
    """The JSON-serialisable result a sandboxed extractor hands back to the parent."""
    return {
        "ok": ok,
        "text": text,
        "reason": reason,
        "pages": pages,
        "ocr_pages": ocr_pages,
        "method": method,
        "warnings": list(warnings or []),
    }


def decode_plain(data: bytes, *, complete: bool = True) -> tuple[str, str]:
    """Decode text bytes as UTF-8, else Windows-1252, else Latin-1; return (text, encoding).

    With *complete* false the bytes are a prefix of the file, and a UTF-8 character cut in
    two at the end is dropped rather than taken for a decoding error.
    """
    try:
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        return decoder.decode(data, final=complete), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        # Windows-1252 leaves five bytes undefined; a file using them is Latin-1 (or binary).
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def extract_plain(path: Path, max_chars: int = MAX_TEXT_CHARS) -> dict[str, Any]:
    """Read, decode and normalise a plain-text file (bounded; safe to run in-process)."""
    read_limit = min(_PLAIN_READ_LIMIT, 4 * max_chars)
    with path.open("rb") as f:
        data = f.read(read_limit)
        more = bool(f.read(1))
    text, encoding = decode_plain(data, complete=not more)
    warnings: list[str] = []
    if encoding != "utf-8":
        warnings.append(f"the file is not UTF-8; it was read as {encoding}")
    collector = TextCollector(max_chars)
    collector.add(text)
    if more and not collector.truncated:
        warnings.append(f"only the first {read_limit:,} bytes of the file were read")
    warnings.extend(collector.warnings())
    return result_record(ok=True, method="plain", text=collector.text(), warnings=warnings)
