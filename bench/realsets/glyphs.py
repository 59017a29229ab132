"""Real set "glyphs": characters of the DejaVu fonts (Debian's fonts-dejavu-core), labelled by Unicode block.

Every character the DejaVu Sans font draws, rendered black on white at 96 px and grouped by its Unicode block
(unicode-data's ``Blocks.txt``): a block with at least ``MIN_CATEGORY`` drawable characters is a category (at most
``MAX_PER_CATEGORY`` of them, sampled with a seed); the characters of the smaller blocks are the background: one-off
symbols from dozens of unrelated blocks (a diffuse background). A few characters of each category are drawn again in
every DejaVu face (serif, mono, bold, oblique): near-duplicate "reposts" that keep their block's label.

    apt-get install fonts-dejavu-core unicode-data
    /work/venv-feat/bin/python bench/realsets/glyphs.py /usr/share/fonts/truetype/dejavu \
        /usr/share/unicode/Blocks.txt bench/data/glyphs.parquet
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import on_white, write_set

MIN_CATEGORY = 40
MAX_PER_CATEGORY = 80
REPOST_SHARE = 0.04
FACES = ("DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif-Bold.ttf",
         "DejaVuSans-Oblique.ttf", "DejaVuSansCondensed.ttf", "DejaVuSerif-Italic.ttf")  # fmt: skip
SIZE = 96


def blocks(path: Path) -> list[tuple[int, int, str]]:
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#") and ";" in line:
            span, name = line.split(";", 1)
            low, high = span.split("..")
            found.append((int(low, 16), int(high, 16), name.strip()))
    return found


def render(char: str, font: ImageFont.FreeTypeFont) -> Image.Image | None:
    image = Image.new("RGBA", (2 * SIZE, 2 * SIZE), (255, 255, 255, 0))
    ImageDraw.Draw(image).text((SIZE // 2, SIZE // 4), char, font=font, fill=(0, 0, 0, 255))
    if image.getbbox() is None:
        return None
    glyph = on_white(image)
    side = max(glyph.size) + 16  # square, with a margin, so thin glyphs are not stretched
    square = Image.new("RGB", (side, side), (255, 255, 255))
    square.paste(glyph, ((side - glyph.size[0]) // 2, (side - glyph.size[1]) // 2))
    return square


def main() -> None:
    from fontTools.ttLib import TTFont

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("fonts", type=Path, help="folder holding DejaVuSans.ttf and the other DejaVu faces")
    parser.add_argument("blocks", type=Path, help="unicode-data's Blocks.txt")
    parser.add_argument("output", type=Path, help="Parquet file to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    cmap = TTFont(args.fonts / FACES[0]).getBestCmap()
    fonts = [ImageFont.truetype(str(args.fonts / face), SIZE) for face in FACES]
    by_block: dict[str, list[str]] = {}
    for low, high, name in blocks(args.blocks):
        chars = [chr(c) for c in range(low, high + 1) if c in cmap and chr(c).isprintable() and not chr(c).isspace()]
        if chars:
            by_block[name] = chars
    categories = sorted(name for name, chars in by_block.items() if len(chars) >= MIN_CATEGORY)
    names, cats, labels, images = [], [], [], []
    for block, chars in by_block.items():
        label = categories.index(block) if block in categories else -1
        if label >= 0 and len(chars) > MAX_PER_CATEGORY:
            chars = list(rng.choice(chars, MAX_PER_CATEGORY, replace=False))
        for char in chars:
            reposted = label >= 0 and rng.random() < REPOST_SHARE
            for face, font in zip(FACES, fonts, strict=True) if reposted else [(FACES[0], fonts[0])]:
                image = render(char, font)
                if image is not None:
                    names.append(f"U+{ord(char):04X} {face}")
                    cats.append(block)
                    labels.append(label)
                    images.append(image)
    write_set(args.output, names=names, categories=cats, labels=np.array(labels), images=images)


if __name__ == "__main__":
    main()
