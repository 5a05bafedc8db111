"""Bytes of test files built in code: PNGs, a scanned page, an image-only PDF."""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont


def _chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, data and CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def make_png(width: int = 32, height: int = 32, seed: int = 0) -> bytes:
    """A valid RGB PNG of random pixels: binary, incompressible, and inspected in-process."""
    rng = random.Random(seed)
    rows = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows))
        + _chunk(b"IEND", b"")
    )


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans if installed (it has umlauts), else Pillow's built-in font."""
    for candidate in (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    ):
        if Path(candidate).is_file():
            return ImageFont.truetype(candidate, size)
    return ImageFont.load_default(size=size)


def scanned_page(lines: list[str], dpi: int = 200) -> Image.Image:
    """A white A4 page with black 12 pt text, as a scanner would deliver it (grayscale)."""
    image = Image.new("L", (round(8.27 * dpi), round(11.69 * dpi)), 255)
    draw = ImageDraw.Draw(image)
    font = _font(round(12 / 72 * dpi))
    y = dpi
    for line in lines:
        draw.text((dpi, y), line, fill=0, font=font)
        y += round(20 / 72 * dpi)
    return image


def image_only_pdf(pages: list[Image.Image], dpi: int = 200) -> bytes:
    """A PDF whose pages are nothing but images (no text layer), like a scanner's output."""
    buffer = io.BytesIO()
    pages[0].save(buffer, "PDF", resolution=dpi, save_all=True, append_images=pages[1:])
    return buffer.getvalue()


def declared_png(width: int, height: int) -> bytes:
    """A grey PNG whose header declares *width* × *height* pixels, with a tiny IDAT."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + _chunk(b"IEND", b"")
    )
