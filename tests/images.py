"""Image files for the upload tests, built with Pillow (as an attacker would hand-craft them)."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image, PngImagePlugin

GPS_IFD = 0x8825


def jpeg_with_gps(size: tuple[int, int] = (40, 30)) -> bytes:
    """A JPEG whose EXIF carries a camera model and a GPS position (Austin)."""
    image = Image.new("RGB", size, (200, 40, 40))
    exif = Image.Exif()
    exif[0x0110] = "SpyCam 3000"  # Model
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (30.0, 16.0, 3.6), 3: "W", 4: (97.0, 44.0, 34.2)})
    return save(image, "JPEG", exif=exif.tobytes())


def png_with_text(size: tuple[int, int] = (20, 20)) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "home: 1100 Congress Ave")
    return save(Image.new("RGBA", size, (10, 120, 200, 128)), "PNG", pnginfo=info)


def png(size: tuple[int, int] = (16, 16), color: tuple[int, int, int] = (0, 128, 0)) -> bytes:
    return save(Image.new("RGB", size, color), "PNG")


def save(image: Image.Image, fmt: str, **kwargs: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()
