"""Draws the web app's icons (the manifest's, the favicon, the Apple touch icon) into
static/icons: ``python -m marketplace.web.icons``. The PNGs are committed; Pillow is a dev
dependency only. The mark is the header's: a ring around a dot, white on the accent blue."""

from __future__ import annotations

from pathlib import Path

ACCENT = (11, 107, 203, 255)
WHITE = (255, 255, 255, 255)
SIZES = {"icon-32.png": 32, "icon-180.png": 180, "icon-192.png": 192, "icon-512.png": 512,
         "icon-maskable-512.png": 512}
OUT = Path(__file__).resolve().parents[2] / "static" / "icons"


def draw(size: int, maskable: bool = False) -> object:
    from PIL import Image, ImageDraw

    scale = 4  # drawn large and scaled down: smooth edges
    big = size * scale
    image = Image.new("RGBA", (big, big), ACCENT if maskable else (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    if not maskable:
        pen.rounded_rectangle((0, 0, big - 1, big - 1), radius=big // 5, fill=ACCENT)
    # A maskable icon keeps its mark inside the central 80 % "safe zone".
    ring = big * (0.30 if maskable else 0.36)
    width = max(scale, int(big * 0.085))
    centre = big / 2
    pen.ellipse((centre - ring, centre - ring, centre + ring, centre + ring), outline=WHITE,
                width=width)
    dot = big * 0.12
    pen.ellipse((centre - dot, centre - dot, centre + dot, centre + dot), fill=WHITE)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, size in SIZES.items():
        draw(size, maskable="maskable" in name).save(OUT / name, optimize=True)  # type: ignore[attr-defined]
        print(OUT / name)


if __name__ == "__main__":
    main()
