"""Real set "tuxpaint": the 796 stamps of Debian's tuxpaint-stamps-default, labelled by folder. HELD OUT of tuning.

Clip-art and photos (animals, food, vehicles, alphabets, road signs, ...). A folder holding at least
``MIN_CATEGORY`` stamps is a category; the stamps of every smaller folder are the background: real, unrelated images
(a diffuse background). This is set A of issue 10; it is kept out of every tuning decision and reported apart.

    apt-get download tuxpaint-stamps-default && dpkg-deb -x tuxpaint-stamps-default_*.deb /tmp/tux
    /work/venv-feat/bin/python bench/realsets/tuxpaint.py /tmp/tux/usr/share/tuxpaint/stamps bench/data/tuxpaint.parquet
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import on_white, write_set

MIN_CATEGORY = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stamps", type=Path, help="the extracted usr/share/tuxpaint/stamps folder")
    parser.add_argument("output", type=Path, help="Parquet file to write")
    args = parser.parse_args()
    files = sorted(args.stamps.rglob("*.png"))
    folders = [str(f.parent.relative_to(args.stamps)) for f in files]
    counts = Counter(folders)
    categories = sorted(folder for folder, count in counts.items() if count >= MIN_CATEGORY)
    labels = np.array([categories.index(f) if f in categories else -1 for f in folders])
    images = [on_white(Image.open(f)) for f in files]
    names = [str(f.relative_to(args.stamps)) for f in files]
    write_set(args.output, names=names, categories=folders, labels=labels, images=images)


if __name__ == "__main__":
    main()
