"""Real set "wesnoth": Battle for Wesnoth's unit sprites, one still image per unit look, labelled by race.

The game's own unit definitions pick the frame: every ``[unit_type]`` of ``data/core/units`` and of the mainline
campaigns' ``units`` folders declares, with ``image=``, the still sprite the game shows for a unit standing on the
map (its animations are other keys and tags). The set takes that image and the ``image=`` of the unit's ``[female]``
and ``[variation]`` looks (``[variation]`` ``[female]`` included) and nothing else, so no animation frame and no
second facing enters (bar the few scenario units whose standing image is itself a pose: a dead queen, a sleeping
gryphon, a defeated elf). Argument-less macros of the same file (``{PATH_TEMP}``) are expanded and image-path
functions (``~RC(...)``, ``~TC(...)``, a trailing ``{MACRO}``) are cut off; an image given only through a macro with
arguments (the Walking Corpse and Soulless variants) does not resolve to a file and is left out, as are units that
only inherit their image through ``[base_unit]``. A picture used by several units (the same file, or campaigns'
byte-identical copies) is taken once, with the first unit's race (the core first, then the campaigns in alphabetical
order); the Fog Clearer's fully transparent hex is left out. The label is the unit's ``race=`` (inherited through
``[base_unit]`` when the unit has none); the core alone has about 300 unit images, too few for the bench, hence the
campaigns.

A race of at least ``MIN_CATEGORY`` images is a category (human, dwarf, elf, undead, drake, orc, the Dunefolk, the
Quenoth elves, merfolk, nagas). The background: the sprites of every smaller race (wolves, trolls, saurians, woses,
gryphons, goblins, bats, ogres, mechanical, ...) and of race ``monster``, the game's catch-all for single creatures
with nothing in common (bears, scorpions, sea serpents, giant ants, ...): real, unrelated images in the same style.
Transparency is composited on white (``common.on_white``); the sprites (72 px, a few larger) are kept at their size.

    mkdir -p /tmp/wesnoth-build && cd /tmp/wesnoth-build && apt-get download wesnoth-1.16-data \
        wesnoth-1.16-{did,dm,dw,ei,httt,l,low,nr,sof,sota,sotbe,thot,trow,tsg,ttb,utbs} && \
        for f in wesnoth-1.16-*.deb; do dpkg-deb -x $f root; done
    cd /work/main && /work/venv-feat/bin/python bench/realsets/wesnoth.py /tmp/wesnoth-build/root \
        bench/data/wesnoth.parquet
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import on_white, write_set

MIN_CATEGORY = 10
CATCH_ALL = "monster"  # Wesnoth's race for unrelated single creatures: background, not a category
DATA = "usr/share/games/wesnoth/*/data"
DEFINE = re.compile(r"^#define (\w+)([^\n]*)\n(.*?)#enddef", re.S | re.M)
TAG = re.compile(r"^\s*\[(/?)\+?(\w+)\]")
KEY = re.compile(r'^\s*(id|race|image)\s*=\s*"?([^"\n]*?)"?\s*(#.*)?$')
# Where an image= belongs to a unit look: the unit itself, its sexes, its variations.
LOOKS = {("unit_type",), ("unit_type", "female"), ("unit_type", "male"), ("unit_type", "variation")} | {
    ("unit_type", "variation", "female"),
    ("unit_type", "variation", "male"),
}


def units(cfg: Path, images: list[Path]) -> list[dict]:
    """The unit types of one .cfg file: id, race, base unit and the image files of their looks."""
    text = cfg.read_text(encoding="utf-8")
    macros = {m.group(1): m.group(3).strip() for m in DEFINE.finditer(text) if not m.group(2).strip()}
    text = DEFINE.sub("", text)
    found, stack, unit = [], [], None
    for line in text.splitlines():
        tag = TAG.match(line)
        if tag:
            if tag.group(1):
                stack = stack[:-1]
            else:
                stack.append(tag.group(2))
                if stack == ["unit_type"]:
                    unit = {"id": None, "race": None, "base": None, "images": []}
                    found.append(unit)
            continue
        key = KEY.match(line)
        if not key or unit is None:
            continue
        name, value = key.group(1), key.group(2)
        if stack == ["unit_type", "base_unit"] and name == "id":
            unit["base"] = value
        elif stack == ["unit_type"] and name in ("id", "race"):
            unit[name] = value
        elif tuple(stack) in LOOKS and name == "image":
            for macro, body in macros.items():
                value = value.replace("{" + macro + "}", body)
            value = re.split(r"[~{]", value)[0]
            path = next((d / value for d in images if value and (d / value).is_file()), None)
            if path is not None:
                unit["images"].append(path)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="folder the wesnoth packages above were extracted to")
    parser.add_argument("output", type=Path, help="Parquet file to write")
    args = parser.parse_args()
    (data,) = args.root.glob(DATA)
    sources = [data / "core", *sorted(p for p in (data / "campaigns").iterdir() if (p / "units").is_dir())]
    all_units = []
    for source in sources:
        images = [source / "images", data / "core" / "images"]
        for cfg in sorted((source / "units").rglob("*.cfg")):
            all_units += units(cfg, images)
    by_id = {u["id"]: u for u in all_units if u["id"]}

    def race(unit: dict) -> str | None:
        seen = set()
        while unit["race"] is None and unit["base"] in by_id and unit["base"] not in seen:
            seen.add(unit["base"])
            unit = by_id[unit["base"]]
        return unit["race"]

    files: dict[Path, str] = {}
    contents = set()
    for unit in all_units:
        for f in unit["images"]:
            content = hashlib.sha1(f.read_bytes()).hexdigest()
            if content not in contents and Image.open(f).convert("RGBA").getchannel("A").getbbox():
                contents.add(content)
                files[f] = race(unit) or "none"
    races = list(files.values())
    counts = Counter(races)
    categories = sorted(r for r, n in counts.items() if n >= MIN_CATEGORY and r != CATCH_ALL)
    labels = np.array([categories.index(r) if r in categories else -1 for r in races])
    names = [str(f.relative_to(data)) for f in files]
    images = [on_white(Image.open(f)) for f in files]
    write_set(args.output, names=names, categories=races, labels=labels, images=images)
    print({r: counts[r] for r in categories}, "background:", {r: n for r, n in counts.items() if r not in categories})


if __name__ == "__main__":
    main()
