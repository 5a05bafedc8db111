"""OCR of images (JPEG, PNG, multi-page TIFF) with Tesseract, and the OCR helper PDFs use."""

from __future__ import annotations

import io
import shutil
import subprocess
import time
import warnings as py_warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dossier_service.files.inspect import MAX_IMAGE_PIXELS, check_image_header
from dossier_service.files.sniff import JPEG, PNG, TIFF
from dossier_service.sandbox import SoftTimeout
from workers.extract.text import TextCollector, result_record

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = [
    "MAX_OCR_PIXELS",
    "OcrError",
    "OcrUnavailable",
    "extract_image",
    "find_tool",
    "ocr_grayscale",
    "run_tesseract",
]

#: Larger page images are scaled down before OCR: A4 at 600 dpi is 35 MP, and Tesseract needs
#: several bytes per pixel, which the memory limit must accommodate.
MAX_OCR_PIXELS = 36_000_000
# Tesseract reads a buffer that is not an image as a list of file names to OCR (local files,
# even URLs), so only netpbm bytes that we produced ourselves are ever handed to it.
_PGM_MAGIC = b"P5"
_LABELS = {PNG: "PNG", JPEG: "JPEG", TIFF: "TIFF"}
# Resolutions outside this range are junk (a phone photo says 72 dpi); Tesseract then
# estimates the resolution from the text height itself.
_PLAUSIBLE_DPI = (100, 1200)


class OcrError(Exception):
    """OCR of one page failed; the message is person-readable."""


class OcrUnavailable(OcrError):
    """Tesseract (or the requested language) is not installed: no page can be OCR'd."""


# --- Tesseract ----------------------------------------------------------------------------


def run_tesseract(
    image: bytes, *, languages: str, dpi: int | None, timeout_s: float, tesseract: str
) -> str:
    """OCR one PGM image with Tesseract; raise :class:`OcrError` on failure."""
    if not image.startswith(_PGM_MAGIC):
        raise OcrError("the page image is not in the expected format")
    command = [tesseract, "stdin", "stdout", "-l", languages]
    if dpi is not None:
        command += ["--dpi", str(dpi)]
    try:
        completed = subprocess.run(  # noqa: S603 - absolute tool path, fixed arguments
            command,
            input=image,
            capture_output=True,
            timeout=max(timeout_s, 1.0),
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise OcrError("OCR took too long") from None
    except OSError as exc:
        raise OcrUnavailable(f"OCR could not be started ({exc.strerror})") from None
    if completed.returncode != 0:
        message = completed.stderr.decode("utf-8", errors="replace")
        if "Failed loading language" in message or "Error opening data file" in message:
            raise OcrUnavailable(f"the OCR language data {languages!r} is not installed")
        raise OcrError(f"OCR failed (Tesseract exit status {completed.returncode})")
    return completed.stdout.decode("utf-8", errors="replace")


def find_tool(job: dict[str, Any], name: str) -> str | None:
    """Absolute path of a tool (``tesseract``, ``pdftoppm``), or None if it is missing.

    A job may name the tool's path itself, or switch the tool off with an empty string.
    """
    if name in job:
        return job[name] or None
    return shutil.which(name)


def ocr_grayscale(
    image: PILImage.Image, *, languages: str, dpi: int | None, timeout_s: float, tesseract: str
) -> str:
    """OCR a Pillow image (any mode), scaled down to the OCR pixel limit if needed."""
    gray = image if image.mode == "L" else image.convert("L")
    pixels = gray.width * gray.height
    if pixels > MAX_OCR_PIXELS:
        scale = (MAX_OCR_PIXELS / pixels) ** 0.5
        size = (max(1, int(gray.width * scale)), max(1, int(gray.height * scale)))
        gray = gray.resize(size)
        dpi = int(dpi * scale) if dpi else None
    buffer = io.BytesIO()
    gray.save(buffer, format="PPM")  # mode L is written as binary PGM ("P5")
    return run_tesseract(
        buffer.getvalue(), languages=languages, dpi=dpi, timeout_s=timeout_s, tesseract=tesseract
    )


def plausible_dpi(value: object) -> int | None:
    """A resolution from image metadata if it is believable, else None."""
    if isinstance(value, tuple) and value:
        value = value[0]
    try:
        dpi = round(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    low, high = _PLAUSIBLE_DPI
    return dpi if low <= dpi <= high else None


def time_left(deadline: float | None) -> float:
    """Seconds until *deadline* (a ``time.monotonic()`` value); generous without one."""
    if deadline is None:
        return 3600.0
    return deadline - time.monotonic()


# --- Images (runs in the sandboxed child) -------------------------------------------------


def extract_image(job: dict[str, Any]) -> dict[str, Any]:
    """Sandbox target: OCR every page (frame) of a JPEG, PNG or TIFF image."""
    from PIL import Image

    path = Path(job["path"])
    media_type = job["media_type"]
    facts, problem = check_image_header(path, media_type)
    if problem is not None:
        return result_record(ok=False, method="image-ocr", reason=problem)
    assert facts is not None
    tesseract = find_tool(job, "tesseract")
    max_pages = int(job["max_ocr_pages"])
    deadline = job.get("soft_deadline")
    warnings: list[str] = []

    # Every frame's size is checked again by Pillow: the header check saw only the first one.
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    py_warnings.simplefilter("error", Image.DecompressionBombWarning)
    label = _LABELS[media_type]
    try:
        image = Image.open(path, formats=[label])
        pages = getattr(image, "n_frames", 1)
    except Image.DecompressionBombError:
        return result_record(ok=False, method="image-ocr", reason="the image is too large to read")
    except Exception as exc:
        if isinstance(exc, MemoryError):
            raise
        return result_record(
            ok=False, method="image-ocr", reason=f"the {label} image is damaged or incomplete"
        )
    if not job["ocr"]:
        return result_record(
            ok=True,
            method="image-ocr",
            pages=pages,
            warnings=["OCR is switched off, so no text was read from the image"],
        )
    if tesseract is None:
        return result_record(
            ok=True,
            method="image-ocr",
            pages=pages,
            warnings=["OCR is not available: Tesseract is not installed"],
        )
    collector = TextCollector(int(job["max_chars"]))
    done = 0
    attempted = 0
    damaged: list[int] = []
    try:
        for index in range(min(pages, max_pages)):
            if collector.full:
                break
            attempted += 1
            text = _ocr_frame(image, index, job, tesseract, deadline, warnings, damaged)
            if text is None:
                continue
            done += 1
            collector.add(text)
    except OcrUnavailable as exc:
        warnings.append(str(exc))
    except SoftTimeout:
        if done == 0:
            raise  # nothing to show: report the timeout itself
        warnings.append(
            f"OCR stopped after {done} of {min(pages, max_pages)} pages: the time limit was reached"
        )
    if attempted and len(damaged) == attempted:
        return result_record(
            ok=False,
            method="image-ocr",
            pages=pages,
            reason=f"the {label} image is damaged or incomplete",
        )
    if pages > max_pages:
        warnings.append(
            f"only the first {max_pages} of {pages} pages were OCR'd (the limit is {max_pages})"
        )
    warnings.extend(collector.warnings())
    return result_record(
        ok=True,
        method="image-ocr",
        text=collector.text(),
        pages=pages,
        ocr_pages=done,
        warnings=warnings,
    )


def _ocr_frame(
    image: PILImage.Image,
    index: int,
    job: dict[str, Any],
    tesseract: str,
    deadline: float | None,
    warnings: list[str],
    damaged: list[int],
) -> str | None:
    """OCR frame *index* of an open image; None (and a warning) if it must be skipped.

    Frames that cannot be decoded are also added to *damaged*.
    """
    from PIL import Image, ImageOps

    try:
        image.seek(index)
        # Pillow checks the pixel count of the first frame only, when the file is opened.
        if image.width * image.height > MAX_IMAGE_PIXELS:
            warnings.append(f"page {index + 1} of the image is too large and was skipped")
            return None
        # Phone photos of letters are usually stored sideways with an EXIF orientation tag.
        frame = ImageOps.exif_transpose(image) if index == 0 else image
        dpi = plausible_dpi(image.info.get("dpi"))
        frame.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        warnings.append(f"page {index + 1} of the image is too large and was skipped")
        return None
    except Exception as exc:
        if isinstance(exc, MemoryError):
            raise
        warnings.append(f"page {index + 1} of the image is damaged and was skipped")
        damaged.append(index)
        return None
    try:
        return ocr_grayscale(
            frame,
            languages=job["languages"],
            dpi=dpi,
            timeout_s=time_left(deadline),
            tesseract=tesseract,
        )
    except OcrUnavailable:
        raise
    except OcrError as exc:
        warnings.append(f"page {index + 1}: {exc}")
        return None
