"""Reading an uploaded image by its content and writing a clean copy (pure; Pillow only).

Nothing about the upload is trusted: not its filename, not its Content-Type. Pillow is asked
to identify the bytes among JPEG, PNG and WebP only; the pixel count is checked from the
header before anything is decoded (a small file can declare a gigapixel canvas); an animation
keeps its first frame; the orientation EXIF asks for is applied, and then the pixels alone
are copied into a new image, so no EXIF (GPS included), XMP, ICC profile or text chunk can
survive. What is stored and served is always a WebP written here."""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP")
CONTENT_TYPE = "image/webp"
QUALITY = 82


class ImageRefused(ValueError):
    """The upload is not an image we take; ``reason`` says why, in words for a person."""

    def __init__(self, reason: str, too_large: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.too_large = too_large


@dataclass(frozen=True)
class Encoded:
    data: bytes
    width: int
    height: int
    content_type: str = CONTENT_TYPE

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def read(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """The first frame of ``data`` as decoded pixels (RGB or RGBA, upright), or ImageRefused."""
    if len(data) > max_bytes:
        raise ImageRefused(f"The image is over {max_bytes / 1_000_000:g} MB; send a smaller "
                           "one.", too_large=True)
    if not data:
        raise ImageRefused("Choose a JPEG, PNG or WebP image.")
    megapixels = f"{max_pixels / 1_000_000:g}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
            width, height = image.size
            if width < 1 or height < 1 or width * height > max_pixels:
                raise ImageRefused(f"The image is {width}x{height} pixels; send one of at most "
                                   f"{megapixels} megapixels.", too_large=True)
            image.seek(0)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRefused(f"The image is too large; send one of at most {megapixels} "
                           "megapixels.", too_large=True) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        if isinstance(exc, ImageRefused):
            raise
        raise ImageRefused("That file is not a JPEG, PNG or WebP image (or it is damaged); "
                           "choose a photo in one of those formats.") from exc
    try:
        upright = ImageOps.exif_transpose(image) or image
    except Exception:  # noqa: BLE001 - a broken orientation tag: keep the pixels as stored
        upright = image
    mode = "RGBA" if upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info \
        else "RGB"
    converted = upright.convert(mode)
    # A new image holding only the pixels: no info dict, no EXIF, no ICC, no text chunks.
    return Image.frombytes(mode, converted.size, converted.tobytes())


def encode(image: Image.Image) -> Encoded:
    buffer = io.BytesIO()
    image.save(buffer, "WEBP", quality=QUALITY, method=4)
    return Encoded(buffer.getvalue(), image.width, image.height)


def square(image: Image.Image, side: int) -> Encoded:
    """The centre square of ``image``, ``side`` pixels (an avatar)."""
    return encode(ImageOps.fit(image, (side, side), Image.Resampling.LANCZOS))


def within(image: Image.Image, side: int) -> Encoded:
    """``image`` scaled down (never up) to fit in a ``side`` square, shape kept (a photo)."""
    copy = image.copy()
    copy.thumbnail((side, side), Image.Resampling.LANCZOS)
    return encode(copy)
