"""Text of Word documents (DOCX): body, tables, headers, footers, notes and comments."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dossier_service.files.sniff import check_docx_container
from workers.extract.text import TextCollector, result_record

if TYPE_CHECKING:
    from lxml.etree import _Element

__all__ = ["DAMAGED_REASON", "extract_docx"]

DAMAGED_REASON = "the Word document could not be opened: it is damaged"

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
_R_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_RELTYPE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"

# Containers whose children are paragraphs and tables.
_BLOCK_CONTAINERS = {
    f"{_W}body",
    f"{_W}hdr",
    f"{_W}ftr",
    f"{_W}footnote",
    f"{_W}endnote",
    f"{_W}comment",
    f"{_W}txbxContent",
    f"{_W}sdtContent",
    f"{_W}customXml",
    f"{_W}tc",
    f"{_W}footnotes",
    f"{_W}endnotes",
    f"{_W}comments",
}
# Inside a paragraph: deleted and moved-away revisions, field codes and properties hold no
# current text (w:delText, w:instrText are not w:t anyway; skipping saves the walk).
_SKIP_INLINE = {
    f"{_W}del",
    f"{_W}moveFrom",
    f"{_W}pPr",
    f"{_W}rPr",
    f"{_W}instrText",
}
_INLINE_CHARS = {
    f"{_W}tab": "\t",
    f"{_W}ptab": "\t",
    f"{_W}br": "\n",
    f"{_W}cr": "\n",
    f"{_W}noBreakHyphen": "-",
}
# Tables inside tables inside tables...: real documents stay far below this.
_MAX_DEPTH = 50


class _Walker:
    """Collects the text of WordprocessingML block content in document order."""

    def __init__(self) -> None:
        """Start with no text."""
        self.too_deep = False

    def blocks(self, container: _Element, depth: int = 0) -> list[str]:
        """Text of each paragraph and table directly in *container* (or in wrappers)."""
        out: list[str] = []
        if depth > _MAX_DEPTH:
            self.too_deep = True
            return out
        for child in container:
            tag = child.tag
            if tag == f"{_W}p":
                out.extend(self.paragraph(child, depth))
            elif tag == f"{_W}tbl":
                out.append(self.table(child, depth + 1))
            elif tag == f"{_W}sdt":
                for content in child.iterchildren(f"{_W}sdtContent"):
                    out.extend(self.blocks(content, depth + 1))
            elif tag == f"{_MC}AlternateContent":
                chosen = _alternative(child)
                if chosen is not None:
                    out.extend(self.blocks(chosen, depth + 1))
            elif tag in _BLOCK_CONTAINERS or tag in (f"{_W}ins", f"{_W}moveTo"):
                out.extend(self.blocks(child, depth + 1))
        return out

    def paragraph(self, p: _Element, depth: int) -> list[str]:
        """The paragraph's text, then the text of any text boxes anchored in it."""
        parts: list[str] = []
        boxes: list[str] = []
        self._inline(p, parts, boxes, depth)
        return ["".join(parts), *boxes]

    def _inline(self, element: _Element, parts: list[str], boxes: list[str], depth: int) -> None:
        """Walk runs, hyperlinks, insertions, fields and content controls of a paragraph."""
        if depth > _MAX_DEPTH:
            self.too_deep = True
            return
        for child in element:
            tag = child.tag
            if tag == f"{_W}t":
                parts.append(child.text or "")
            elif tag in _INLINE_CHARS:
                parts.append(_INLINE_CHARS[tag])
            elif tag in _SKIP_INLINE or not isinstance(tag, str):
                continue  # revisions, properties; comments and processing instructions
            elif tag == f"{_W}txbxContent":
                boxes.extend(self.blocks(child, depth + 1))
            elif tag == f"{_MC}AlternateContent":
                # Word stores a text box twice (DrawingML and VML fallback): read one.
                chosen = _alternative(child)
                if chosen is not None:
                    self._inline(chosen, parts, boxes, depth + 1)
            else:
                self._inline(child, parts, boxes, depth + 1)

    def table(self, tbl: _Element, depth: int) -> str:
        """Rows on lines, cells tab-separated; a merged cell is one w:tc, so it counts once."""
        rows: list[str] = []
        for tr in _unwrapped(tbl, f"{_W}tr"):
            cells = [
                "\n".join(t for t in self.blocks(tc, depth + 1) if t)
                for tc in _unwrapped(tr, f"{_W}tc")
            ]
            rows.append("\t".join(cells))
        return "\n".join(rows)


def _alternative(alternate: _Element) -> _Element | None:
    """The first mc:Choice of an mc:AlternateContent, else its mc:Fallback."""
    for tag in (f"{_MC}Choice", f"{_MC}Fallback"):
        for child in alternate.iterchildren(tag):
            return child
    return None


def _unwrapped(parent: _Element, tag: str) -> list[_Element]:
    """Children with *tag*, also those wrapped in content controls or custom XML."""
    found: list[_Element] = []
    stack = list(reversed(list(parent)))
    while stack:
        child = stack.pop()
        if child.tag == tag:
            found.append(child)
        elif child.tag in (f"{_W}sdt", f"{_W}sdtContent", f"{_W}customXml"):
            stack.extend(reversed(list(child)))
    return found


def _part_element(part: Any) -> _Element:
    """The XML root of a package part (python-docx parses only some part types itself)."""
    element = getattr(part, "element", None)
    if element is not None:
        return element
    from docx.oxml.parser import parse_xml

    return parse_xml(part.blob)


def extract_docx(job: dict[str, Any]) -> dict[str, Any]:
    """Sandbox target: all text of a DOCX, headers first and footers last, body in order."""
    path = Path(job["path"])
    # Zip-bomb and structure checks before python-docx inflates anything.
    problem = check_docx_container(path)
    if problem is not None:
        return result_record(ok=False, method="docx", reason=problem)
    import docx

    try:
        document = docx.Document(str(path))
        body = document.element.body
        walker = _Walker()
        headers, footers = _headers_and_footers(document)
        notes = [
            _part_element(rel.target_part)
            for kind in ("footnotes", "endnotes", "comments")
            for rel in document.part.rels.values()
            if rel.reltype == _RELTYPE + kind and not rel.is_external
        ]
        blocks: list[str] = []
        for element in headers:
            blocks.extend(walker.blocks(element))
        blocks.extend(walker.blocks(body))
        for element in notes:
            blocks.extend(walker.blocks(element))
        for element in footers:
            blocks.extend(walker.blocks(element))
    except Exception as exc:
        if isinstance(exc, MemoryError):
            raise
        return result_record(ok=False, method="docx", reason=DAMAGED_REASON)
    collector = TextCollector(int(job["max_chars"]))
    for block in blocks:
        collector.add(block)
    warnings = collector.warnings()
    if walker.too_deep:
        warnings.append(f"content nested more than {_MAX_DEPTH} levels deep was skipped")
    return result_record(ok=True, method="docx", text=collector.text(), warnings=warnings)


def _headers_and_footers(document: Any) -> tuple[list[_Element], list[_Element]]:
    """Header and footer parts in section order, each once (sections often share them)."""
    related = document.part.related_parts
    seen: set[str] = set()
    headers: list[_Element] = []
    footers: list[_Element] = []
    # Every section's properties (w:sectPr) name its headers and footers; all but the last
    # section's sit in paragraph properties, so walk the whole body in document order.
    for sect_pr in document.element.body.iter(f"{_W}sectPr"):
        for reference in sect_pr:
            if reference.tag == f"{_W}headerReference":
                target = headers
            elif reference.tag == f"{_W}footerReference":
                target = footers
            else:
                continue
            rel_id = reference.get(_R_ID)
            part = related.get(rel_id) if rel_id else None
            if part is None or str(part.partname) in seen:
                continue
            seen.add(str(part.partname))
            target.append(_part_element(part))
    return headers, footers
