"""Generates small, real PDF and DOCX documents with German text (demo data, tests, benches)."""

from __future__ import annotations

import io
import textwrap

import pikepdf
from docx import Document as DocxDocument


def _pdf_escape(line: str) -> bytes:
    """A PDF literal string in WinAnsiEncoding (covers ä ö ü ß é …)."""
    raw = line.encode("cp1252", "replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def make_pdf(title: str, paragraphs: list[str], *, pages: int = 1) -> bytes:
    """A text PDF (with a real text layer) of the given paragraphs, repeated over pages."""
    pdf = pikepdf.new()
    font = pdf.make_indirect(
        pikepdf.Dictionary(
            Type=pikepdf.Name.Font,
            Subtype=pikepdf.Name.Type1,
            BaseFont=pikepdf.Name.Helvetica,
            Encoding=pikepdf.Name.WinAnsiEncoding,
        )
    )
    for page_no in range(1, pages + 1):
        lines = [title, ""]
        for paragraph in paragraphs:
            lines.extend(textwrap.wrap(paragraph, 85) or [""])
            lines.append("")
        if pages > 1:
            lines.append(f"Seite {page_no} von {pages}")
        ops = [b"BT", b"/F1 11 Tf", b"14 TL", b"56 780 Td"]
        for line in lines[:50]:
            ops.append(b"(" + _pdf_escape(line) + b") Tj T*")
        ops.append(b"ET")
        content = pdf.make_stream(b"\n".join(ops))
        page = pikepdf.Dictionary(
            Type=pikepdf.Name.Page,
            MediaBox=[0, 0, 595, 842],
            Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font)),
            Contents=content,
        )
        pdf.pages.append(pikepdf.Page(page))
    pdf.docinfo["/Title"] = title
    buffer = io.BytesIO()
    pdf.save(buffer)
    return buffer.getvalue()


def make_docx(title: str, paragraphs: list[str], table: list[list[str]] | None = None) -> bytes:
    """A DOCX with a heading, paragraphs and an optional table."""
    document = DocxDocument()
    document.add_heading(title, level=1)
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
