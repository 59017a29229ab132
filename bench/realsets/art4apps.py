"""Real set "art4apps": clip-art by topic (Debian's pysiogame) in a background of unrelated single images.

The topics are the folders of pysiogame's art4apps clip-art (animals, food, jobs, transport, ... : 12 folders, 585
drawings in one flat style, 200 px JPEG on white); every folder is a category. The background is what issue 10 calls
diffuse: single images from unrelated sources, each drawn from a different place so that no two make a topic:

- icons of Debian's oxygen-icon-theme (256 px), at most ``ICONS_PER_CONTEXT`` per context (apps, devices, places,
  ...), so the glossy icon style does not become a topic of its own by sheer number;
- one emoji per Unicode subgroup of Debian's Noto Color Emoji (unicode-data's ``emoji-test.txt``), at most
  ``EMOJI``;
- one character per Unicode block of DejaVu Sans (``fonts-dejavu-core``, unicode-data's ``Blocks.txt``), at most
  ``GLYPHS``;
- the photographs and test images bundled in scikit-image's wheel (``skimage/data``).

``--background photos`` builds the variant ``art4apps-photos``: the same topics in a background of photographs and
wallpapers only, each a picture of its own (scikit-image's, and one file per wallpaper design of Debian's
mate-backgrounds, plasma-workspace-wallpapers, gnome-backgrounds and xfdesktop4-data; size, dark/light and colour
variants left out). There the background sits apart from the clip-art as a whole, the case that made HDBSCAN's
excess of mass return two or three clusters at every ``min_cluster_size`` (sweep.py, SELECTIONS).

    apt-get download pysiogame oxygen-icon-theme && for f in pysiogame_*.deb oxygen-icon-theme_*.deb; do
        dpkg-deb -x $f /tmp/a4a; done
    apt-get install fonts-noto-color-emoji fonts-dejavu-core unicode-data
    /work/venv-feat/bin/pip install scikit-image
    /work/venv-feat/bin/python bench/realsets/art4apps.py /tmp/a4a bench/data/art4apps.parquet
    apt-get download mate-backgrounds plasma-workspace-wallpapers gnome-backgrounds xfdesktop4-data && for f in \
        mate-backgrounds_*.deb plasma-workspace-wallpapers_*.deb gnome-backgrounds_*.deb xfdesktop4-data_*.deb; do
        dpkg-deb -x $f /tmp/a4a; done
    /work/venv-feat/bin/python bench/realsets/art4apps.py /tmp/a4a bench/data/art4apps-photos.parquet \
        --background photos
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import on_white, write_set
from glyphs import blocks, render

ART = "usr/share/games/pysiogame/res/images/art4apps"
ICONS = "usr/share/icons/oxygen/base/256x256"
BACKGROUNDS = "usr/share/backgrounds"
PLASMA = "usr/share/wallpapers"
PICTURES = (".jpg", ".png", ".webp")
# Variants of one wallpaper design (MATE's sizes and colourways, GNOME's dark and light pairs).
VARIANT = re.compile(r"(_\d+x\d+|-[dl]|-(Dark|Light|Cold|Warm|Radioactive)(-no-logo)?)$")
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
EMOJI_TEST = Path("/usr/share/unicode/emoji/emoji-test.txt")
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
BLOCKS = Path("/usr/share/unicode/Blocks.txt")
# Few images per source: one source's images share a style and would make a topic of their own (measured with 25
# icons per context, 50 emoji and 40 glyphs: 83 % / 43 % / 86 % of their neighbours were of the same source).
ICONS_PER_CONTEXT = 4
EMOJI = 30
GLYPHS = 10
EMOJI_SIZE = 109  # the one size Noto Color Emoji's bitmaps come in


def art(root: Path) -> tuple[list[str], list[str], list[Image.Image]]:
    files = sorted((root / ART).glob("*/*.jpg"))
    return [f.stem for f in files], [f.parent.name for f in files], [on_white(Image.open(f)) for f in files]


def icons(root: Path, rng: np.random.Generator) -> tuple[list[str], list[Image.Image]]:
    names, images = [], []
    for context in sorted(p for p in (root / ICONS).iterdir() if p.is_dir()):
        files = sorted(context.glob("*.png"))
        for f in rng.permutation(files)[:ICONS_PER_CONTEXT]:
            names.append(f"oxygen/{context.name}/{Path(f).stem}")
            images.append(on_white(Image.open(f)))
    return names, images


def emoji(rng: np.random.Generator) -> tuple[list[str], list[Image.Image]]:
    by_subgroup: dict[str, list[str]] = {}
    subgroup = None
    for line in EMOJI_TEST.read_text(encoding="utf-8").splitlines():
        if line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif line and not line.startswith("#") and "; fully-qualified" in line:
            chars = "".join(chr(int(c, 16)) for c in line.split(";")[0].split())
            by_subgroup.setdefault(subgroup, []).append(chars)
    font = ImageFont.truetype(str(EMOJI_FONT), EMOJI_SIZE)
    names, images = [], []
    for name in rng.permutation(sorted(by_subgroup))[:EMOJI]:
        chars = by_subgroup[name][int(rng.integers(len(by_subgroup[name])))]
        image = Image.new("RGBA", (136, 128), (255, 255, 255, 0))
        ImageDraw.Draw(image).text((0, 0), chars, font=font, embedded_color=True)
        if image.getbbox() is not None:
            names.append(f"emoji/{name}")
            images.append(on_white(image))
    return names, images


def glyphs(rng: np.random.Generator) -> tuple[list[str], list[Image.Image]]:
    from fontTools.ttLib import TTFont

    cmap = TTFont(DEJAVU).getBestCmap()
    font = ImageFont.truetype(str(DEJAVU), 96)
    names, images = [], []
    for low, high, block in [blocks(BLOCKS)[i] for i in rng.permutation(len(blocks(BLOCKS)))]:
        chars = [chr(c) for c in range(low, high + 1) if c in cmap and chr(c).isprintable() and not chr(c).isspace()]
        image = render(chars[int(rng.integers(len(chars)))], font) if chars else None
        if image is not None:
            names.append(f"glyph/{block}")
            images.append(image)
        if len(images) == GLYPHS:
            break
    return names, images


def photos() -> tuple[list[str], list[Image.Image]]:
    import skimage

    files = sorted(p for p in (Path(skimage.__file__).parent / "data").iterdir() if p.suffix in (".png", ".jpg"))
    return [f"skimage/{f.stem}" for f in files], [Image.open(f).convert("RGB") for f in files]


def wallpapers(root: Path) -> tuple[list[str], list[Image.Image]]:
    """One picture per wallpaper design: Plasma's previews, MATE's and Xfce's files, GNOME's light variants."""
    # Plasma's preview where there is one (a small copy of the picture), else its first size.
    plasma = sorted(p for p in (root / PLASMA).iterdir() if p.is_dir())
    files = [min((d / "contents").rglob("*.*"), key=lambda f: (f.parent.name != "contents", f.name)) for d in plasma]
    names = [f"wallpaper/plasma/{d.name}" for d in plasma]
    seen = set()
    for f in sorted((root / BACKGROUNDS).rglob("*")):
        base = VARIANT.sub("", f.stem)
        if f.suffix in PICTURES and not f.stem.endswith("-d") and (f.parent, base) not in seen:
            seen.add((f.parent, base))
            files.append(f)
            names.append(f"wallpaper/{f.parent.name}/{f.stem}")
    return names, [Image.open(f).convert("RGB") for f in files]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="folder the packages above were extracted to")
    parser.add_argument("output", type=Path, help="Parquet file to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--background", choices=("graphics", "photos"), default="graphics",
                        help="graphics: icons, emoji, characters and photographs (art4apps); photos: photographs and "
                             "wallpapers only (art4apps-photos)")  # fmt: skip
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    names, categories, images = art(args.root)
    topics = sorted(set(categories))
    labels = [topics.index(c) for c in categories]
    if args.background == "photos":
        sources = (("photo", photos()), ("wallpaper", wallpapers(args.root)))
    else:
        sources = (("icon", icons(args.root, rng)), ("emoji", emoji(rng)), ("glyph", glyphs(rng)), ("photo", photos()))
    for source, (more_names, more_images) in sources:
        names += more_names
        categories += [f"background: {source}"] * len(more_names)
        labels += [-1] * len(more_names)
        images += more_images
    write_set(args.output, names=names, categories=categories, labels=np.array(labels), images=images)


if __name__ == "__main__":
    main()
