"""Text of PDFs: the text layer through pikepdf and pypdf, OCR for pages that have none."""

from __future__ import annotations

import io
import logging
import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dossier_service.files.inspect import MAX_IMAGE_PIXELS
from dossier_service.sandbox import SoftTimeout
from workers.extract.image import (
    MAX_OCR_PIXELS,
    OcrError,
    OcrUnavailable,
    find_tool,
    ocr_grayscale,
    plausible_dpi,
    run_tesseract,
    time_left,
)
from workers.extract.text import TextCollector, normalize_text, result_record

if TYPE_CHECKING:
    import pikepdf
    import pypdf

__all__ = ["DAMAGED_REASON", "NO_PAGES_REASON", "PASSWORD_REASON", "extract_pdf"]

PASSWORD_REASON = "the PDF is password-protected; its text cannot be read"  # noqa: S105
DAMAGED_REASON = "the PDF is damaged beyond repair"
NO_PAGES_REASON = "the PDF has no pages"
_REPAIRED_WARNING = "the PDF is damaged and was repaired; some of its text may be missing"
# A page with fewer non-space characters than this in its text layer is treated as scanned
# (page numbers, a stamp or a scanner's footer are not the page's text).
_MIN_TEXT_CHARS = 20
# ...and so is a page with a short text layer over a page-sized image (a scan with a typed
# header or an "Eingang" stamp added by the scanning software).
_SHORT_TEXT_CHARS = 200
_SCAN_IMAGE_PIXELS = 1_000_000
_RENDER_DPI = 300
_MIN_RENDER_DPI = 50
# Embedded images tried per page when pages cannot be rendered.
_MAX_IMAGES_PER_PAGE = 3
# qpdf's words when it had to rebuild a damaged file.
_REPAIR_MARKERS = ("damaged", "reconstruct")


@dataclass
class _Document:
    """An opened PDF: pikepdf's view (if qpdf could open it) and pypdf's."""

    reader: pypdf.PdfReader
    pages: int
    pike: pikepdf.Pdf | None = None
    warnings: list[str] = field(default_factory=list)


class _Refusal(Exception):
    """Internal: the PDF cannot be read at all; carries the reason."""


def _raise_if_out_of_memory(exc: BaseException) -> None:
    """Re-raise memory exhaustion, which qpdf reports as a PdfError saying std::bad_alloc."""
    if isinstance(exc, MemoryError):
        raise exc
    if "bad_alloc" in str(exc):
        raise MemoryError from exc


def _open(path: Path) -> _Document:
    """Open with qpdf (repairing if needed) and hand its cleaned copy to pypdf."""
    import pikepdf
    import pypdf

    try:
        pike = pikepdf.open(path, attempt_recovery=True)
    except pikepdf.PasswordError:
        raise _Refusal(PASSWORD_REASON) from None
    except Exception as exc:
        _raise_if_out_of_memory(exc)
        # qpdf gave up; pypdf's own repair is a second, independent chance.
        return _open_with_pypdf(path)
    try:
        pages = len(pike.pages)
        # Streams are copied as they are: decoding them here would inflate a compression
        # bomb. The copy is decrypted (empty user password), so pypdf needs no crypto.
        buffer = io.BytesIO()
        pike.save(
            buffer,
            encryption=False,
            stream_decode_level=pikepdf.StreamDecodeLevel.none,
        )
        buffer.seek(0)
        reader = pypdf.PdfReader(buffer, strict=False)
    except Exception as exc:
        _raise_if_out_of_memory(exc)
        pike.close()
        return _open_with_pypdf(path)
    document = _Document(reader=reader, pages=pages, pike=pike)
    if any(marker in str(w).lower() for w in pike.get_warnings() for marker in _REPAIR_MARKERS):
        document.warnings.append(_REPAIRED_WARNING)
    return document


def _open_with_pypdf(path: Path) -> _Document:
    """Fallback when qpdf cannot open the file at all."""
    import pypdf

    try:
        reader = pypdf.PdfReader(path, strict=False)
        if reader.is_encrypted:
            try:
                decrypted = reader.decrypt("")
            except Exception as exc:  # e.g. an encryption pypdf cannot do without extras
                _raise_if_out_of_memory(exc)
                raise _Refusal(PASSWORD_REASON) from None
            if decrypted == pypdf.PasswordType.NOT_DECRYPTED:
                raise _Refusal(PASSWORD_REASON)
        pages = len(reader.pages)
    except _Refusal:
        raise
    except Exception as exc:
        _raise_if_out_of_memory(exc)
        raise _Refusal(DAMAGED_REASON) from None
    return _Document(reader=reader, pages=pages, warnings=[_REPAIRED_WARNING])


def _plural(count: int, noun: str) -> str:
    """'1 page', '3 pages'."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _pages_without_text(count: int) -> str:
    """'1 page without a text layer was', '3 pages without a text layer were'."""
    verb = "was" if count == 1 else "were"
    return f"{_plural(count, 'page')} without a text layer {verb}"


def _page_images(page: pikepdf.Page) -> list[pikepdf.Stream]:
    """Image XObjects in the page's own resources.

    Images nested in form XObjects are not looked for: a hostile file can nest forms into
    an exponentially large tree, and scanners put the page image on the page itself.
    """
    get_images = getattr(page, "get_images", None)  # pikepdf 10; .images is deprecated
    mapping = get_images(recursive=False) if get_images is not None else page.images
    return list(mapping.values())


def _has_page_sized_image(page: pikepdf.Page) -> bool:
    """Whether the page draws an image of scanner size."""
    try:
        for image in _page_images(page):
            width, height = int(image.get("/Width", 0)), int(image.get("/Height", 0))
            if width * height >= _SCAN_IMAGE_PIXELS:
                return True
    except Exception as exc:
        _raise_if_out_of_memory(exc)
    return False


def _needs_ocr(text: str, page: pikepdf.Page | None) -> bool:
    """Whether a page's text layer is too thin to stand for its content."""
    chars = sum(1 for c in text if not c.isspace())
    if chars < _MIN_TEXT_CHARS:
        return True
    return chars < _SHORT_TEXT_CHARS and page is not None and _has_page_sized_image(page)


@dataclass
class _OcrContext:
    """What OCR of PDF pages needs: tools, languages, deadline and the source file."""

    path: Path
    languages: str
    deadline: float | None
    tesseract: str
    pdftoppm: str | None


def extract_pdf(job: dict[str, Any]) -> dict[str, Any]:
    """Sandbox target: text of every page; scanned pages go through OCR."""
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # font warnings by the thousand
    path = Path(job["path"])
    try:
        document = _open(path)
    except _Refusal as refusal:
        return result_record(ok=False, method="text-layer", reason=str(refusal))
    if document.pages == 0:
        return result_record(ok=False, method="text-layer", reason=NO_PAGES_REASON, pages=0)
    warnings = list(document.warnings)
    texts, candidates, complete = _text_layer(document, int(job["max_chars"]), warnings)

    ocr_done: set[int] = set()
    if candidates and complete:
        if not job["ocr"]:
            warnings.append(
                f"{_pages_without_text(len(candidates))} not OCR'd: OCR is switched off"
            )
        else:
            ocr_done = _ocr_pages(document, candidates, texts, job, warnings)

    collector = TextCollector(int(job["max_chars"]))
    for text in texts:
        collector.add(text)
    warnings.extend(collector.warnings())
    if not ocr_done:
        method = "text-layer"
    elif len(ocr_done) == document.pages:
        method = "ocr"
    else:
        method = "mixed"
    return result_record(
        ok=True,
        method=method,
        text=collector.text(),
        pages=document.pages,
        ocr_pages=len(ocr_done),
        warnings=warnings,
    )


def _text_layer(
    document: _Document, max_chars: int, warnings: list[str]
) -> tuple[list[str], list[int], bool]:
    """Each page's text layer; the pages needing OCR; whether all pages were read in time."""
    texts: list[str] = []
    candidates: list[int] = []
    unreadable = 0
    total = 0
    try:
        for index in range(document.pages):
            if total > max_chars:
                break  # the collector will cut and say so
            try:
                raw = document.reader.pages[index].extract_text()
            except Exception as exc:
                _raise_if_out_of_memory(exc)
                raw = ""
                unreadable += 1
            text = normalize_text(raw)
            texts.append(text)
            total += len(text)
            page = document.pike.pages[index] if document.pike is not None else None
            if _needs_ocr(text, page):
                candidates.append(index)
    except SoftTimeout:
        if not any(texts):
            raise  # nothing to show: report the timeout itself
        warnings.append(
            f"text extraction stopped after {len(texts)} of {document.pages} pages: "
            "the time limit was reached"
        )
        return texts, candidates, False
    if unreadable:
        warnings.append(f"the text layer of {_plural(unreadable, 'page')} could not be read")
    return texts, candidates, True


def _ocr_pages(
    document: _Document,
    candidates: list[int],
    texts: list[str],
    job: dict[str, Any],
    warnings: list[str],
) -> set[int]:
    """OCR (at most ``max_ocr_pages`` of) the candidate pages; texts are updated in place."""
    tesseract = find_tool(job, "tesseract")
    if tesseract is None:
        warnings.append(
            f"{_pages_without_text(len(candidates))} not OCR'd: Tesseract is not installed"
        )
        return set()
    limit = int(job["max_ocr_pages"])
    if len(candidates) > limit:
        warnings.append(
            f"only {limit} of {len(candidates)} pages without a text layer were OCR'd "
            f"(the limit is {limit})"
        )
    context = _OcrContext(
        path=Path(job["path"]),
        languages=job["languages"],
        deadline=job.get("soft_deadline"),
        tesseract=tesseract,
        pdftoppm=find_tool(job, "pdftoppm"),
    )
    done: set[int] = set()
    todo = candidates[:limit]
    try:
        for index in todo:
            try:
                text = _ocr_page(document, index, context)
            except OcrUnavailable as exc:
                warnings.append(str(exc))
                break
            except OcrError as exc:
                warnings.append(f"page {index + 1} could not be OCR'd: {exc}")
                continue
            done.add(index)
            # A short text layer (a stamp, a header) stays: OCR may misread what it holds.
            texts[index] = f"{texts[index]}\n\n{text}" if texts[index] else text
    except SoftTimeout:
        warnings.append(
            f"OCR stopped after {len(done)} of {len(todo)} pages: the time limit was reached"
        )
    return done


def _ocr_page(document: _Document, index: int, context: _OcrContext) -> str:
    """Render one page and OCR it; embedded images are the fallback when rendering fails."""
    render_error: OcrError | None = None
    if context.pdftoppm is not None:
        try:
            image, dpi = _render_page(document, index, context)
            return run_tesseract(
                image,
                languages=context.languages,
                dpi=dpi,
                timeout_s=time_left(context.deadline),
                tesseract=context.tesseract,
            )
        except OcrUnavailable:
            raise
        except OcrError as exc:
            render_error = exc
    if document.pike is None:
        raise render_error or OcrError("the page cannot be rendered")
    text = _ocr_embedded_images(document.pike, index, context)
    if text is None:
        raise render_error or OcrError("the page has no image to read")
    return text


def _page_size_inches(page: pikepdf.Page) -> tuple[float, float] | None:
    """Width and height of the page's media box in inches, if it makes sense."""
    try:
        x0, y0, x1, y1 = (float(v) for v in page.mediabox)
        unit = float(page.obj.get("/UserUnit", 1))
    except Exception as exc:
        _raise_if_out_of_memory(exc)
        return None
    width, height = abs(x1 - x0) * unit / 72, abs(y1 - y0) * unit / 72
    if not (math.isfinite(width) and math.isfinite(height)) or width <= 0 or height <= 0:
        return None
    return width, height


def _render_page(document: _Document, index: int, context: _OcrContext) -> tuple[bytes, int]:
    """Render one page as an 8-bit grayscale PGM with pdftoppm; (image, dpi)."""
    import pikepdf

    assert context.pdftoppm is not None
    dpi = _RENDER_DPI
    if document.pike is not None:
        page = document.pike.pages[index]
        size = _page_size_inches(page)
        if size is not None:
            # Poster-sized pages are rendered at a lower resolution, within the pixel limit.
            fit = math.sqrt(MAX_OCR_PIXELS / (size[0] * size[1]))
            dpi = min(_RENDER_DPI, math.floor(fit))
            if dpi < _MIN_RENDER_DPI:
                raise OcrError("the page is too large to render")
        # Poppler only ever sees one page, as qpdf rewrote it: a second parser's view of a
        # damaged file cannot differ from the one the text layer came from.
        single = pikepdf.new()
        single.pages.append(page)
        buffer = io.BytesIO()
        single.save(buffer)
        command = [context.pdftoppm, "-r", str(dpi), "-gray", "-singlefile", "-"]
        source: bytes | None = buffer.getvalue()
    else:
        number = str(index + 1)
        command = [context.pdftoppm, "-r", str(dpi), "-gray", "-singlefile"]
        command += ["-f", number, "-l", number, str(context.path)]
        source = None
    try:
        completed = subprocess.run(  # noqa: S603 - absolute tool path, fixed arguments
            command,
            input=source,
            stdin=subprocess.DEVNULL if source is None else None,
            capture_output=True,
            timeout=max(time_left(context.deadline), 1.0),
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise OcrError("rendering the page took too long") from None
    except OSError as exc:
        raise OcrError(f"the page could not be rendered ({exc.strerror})") from None
    image = completed.stdout
    if completed.returncode != 0 or not image.startswith(b"P5"):
        raise OcrError("the page could not be rendered")
    return image, dpi


def _ocr_embedded_images(pike: pikepdf.Pdf, index: int, context: _OcrContext) -> str | None:
    """OCR the largest images placed on a page; None if it has none that can be decoded."""
    import pikepdf

    page = pike.pages[index]
    try:
        streams = _page_images(page)
    except Exception as exc:
        _raise_if_out_of_memory(exc)
        return None
    sized: list[tuple[int, pikepdf.Stream]] = []
    for stream in streams:
        try:
            pixels = int(stream.get("/Width", 0)) * int(stream.get("/Height", 0))
        except Exception:  # noqa: S112 - a malformed image dictionary is just skipped
            continue
        if 0 < pixels <= MAX_IMAGE_PIXELS:
            sized.append((pixels, stream))
    sized.sort(key=lambda item: item[0], reverse=True)
    size = _page_size_inches(page)
    texts: list[str] = []
    decoded = False
    for _pixels, stream in sized[:_MAX_IMAGES_PER_PAGE]:
        try:
            image = pikepdf.PdfImage(stream).as_pil_image()
        except Exception as exc:
            _raise_if_out_of_memory(exc)
            continue  # an unsupported filter (JBIG2 without jbig2dec, say)
        decoded = True
        dpi = plausible_dpi(image.width / size[0]) if size else None
        texts.append(
            ocr_grayscale(
                image,
                languages=context.languages,
                dpi=dpi,
                timeout_s=time_left(context.deadline),
                tesseract=context.tesseract,
            )
        )
    return "\n\n".join(texts) if decoded else None
