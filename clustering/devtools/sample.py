"""The bundled demo sample: synthetic images of six distinct kinds, near-duplicates, reposts and broken files, plus a
manifest of posts (text, date, account) that point at them.

Nothing is committed: the sample is generated, deterministically from a seed, in under a few seconds. Each kind has
its own generator and parameter ranges so the kinds are visually distinct (smooth gradients, oriented stripes,
checkerboards, concentric rings, noise textures, flat shapes), which gives the clustering something true to find.
A few "viral" images are reposted by other accounts, as exact copies and as re-encoded, resized copies, which gives
the repost groups something true to find; the posts themselves come from :mod:`clustering.devtools.sample_posts`.
With ``together`` (the demo's sample), three accounts also post the same three pictures within seconds of each other
(one exact copy, one re-encoded and resized copy each, 6 rows beyond ``n_images``): a small group the report's "Posted
together" section shows.

``python -m clustering.devtools.sample OUTDIR [--n-images 300] [--seed 0] [--url-prefix http://127.0.0.1:8000/]``
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from clustering.devtools import sample_posts

KINDS = ("gradient", "stripes", "checkerboard", "circles", "noise", "shapes")
BROKEN = "broken"
MANIFEST = "urls.csv"
IMAGES = "images"
MANIFEST_COLUMNS = ("post_id", "url", "path", "kind", "duplicate_of", "repost_of", "posted_with", "post_text",
                    "created_at", "account")  # fmt: skip
# Sides of 64-256 px keep generation and the demo fast while leaving CLIP's 224 crop something to resize.
MIN_SIDE, MAX_SIDE = 64, 256
# One in ten rows is a near-duplicate of another row: enough for the exact/near-duplicate views to show something.
NEAR_DUPLICATE_FRACTION = 0.1
# One in ten rows reposts a viral image, about seven reposts per viral image, half of them byte-identical.
REPOST_FRACTION = 0.1
REPOSTS_PER_VIRAL = 7
EXACT_REPOST_SHARE = 0.5
# Viral images are posters and gradients: pictures whose perceptual hash survives resizing (fine stripes and
# checkerboards alias when shrunk, see clustering.analysis.posts.reposts), as memes and flyers do.
VIRAL_KINDS = ("shapes", "gradient")
BROKEN_FILES = ("truncated.jpg", "html.jpg", "empty.jpg")
# Pictures the accounts of sample_posts.TOGETHER_ACCOUNTS post together (the analysis's --min-repetition default is
# 3), each by every one of them: the first account's post is an original of a viral kind, the others copy it (rows
# beyond n_images), with make_sample(together=True).
TOGETHER_IMAGES = 3
MIN_IMAGES = len(KINDS) + len(BROKEN_FILES) + 2


@dataclasses.dataclass(frozen=True)
class SampleInfo:
    """What :func:`make_sample` wrote.

    Attributes
    ----------
    outdir : Path
        The sample folder.
    manifest : Path
        ``outdir / "urls.csv"``: post_id, url, path (relative to outdir), kind, duplicate_of (post_id of the
        original for near-duplicates, else empty), repost_of (post_id of the viral original for reposts, else
        empty), posted_with (post_id of the first post of a picture the accounts of
        ``sample_posts.TOGETHER_ACCOUNTS`` posted together, on its copies; else empty), post_text, created_at (ISO
        8601 with offset; empty for a few rows), account.
    n_rows : int
        Rows in the manifest (images, near-duplicates, reposts and broken files).
    counts : dict of str to int
        Rows per ``kind`` label: the six kinds (near-duplicates and reposts count as their source's kind) and
        ``broken``.
    near_duplicates : int
        Rows that re-save another row's picture with a crop and a brightness change (their ``duplicate_of`` names it).
    reposts : int
        Rows that repost a viral image, byte-identical or re-encoded and resized (their ``repost_of`` names it).
    together : int
        Rows of the pictures posted together (first posts and copies).
    """

    outdir: Path
    manifest: Path
    n_rows: int
    counts: dict[str, int]
    near_duplicates: int
    reposts: int
    together: int = 0


# --- generators: each returns an RGB image of the given size ----------------------------------------------------


def _colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> np.ndarray:
    return rng.integers(low, high, size=3).astype(np.float64)


def _grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))


def _blend(mask: np.ndarray, a: np.ndarray, b: np.ndarray) -> Image.Image:
    """Per-pixel mix of two colours by ``mask`` in [0, 1]."""
    rgb = a * (1 - mask[..., None]) + b * mask[..., None]
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def gradient(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Linear blend between two colours at a random angle: smooth, no edges."""
    x, y = _grid(width, height)
    angle = rng.uniform(0, np.pi)
    t = x * np.cos(angle) + y * np.sin(angle)
    t = (t - t.min()) / max(np.ptp(t), 1e-9)
    return _blend(t, _colour(rng), _colour(rng))


def stripes(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Hard-edged stripes, period 6-20 px, at a random angle, in two contrasting colours."""
    x, y = _grid(width, height)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(6, 20)
    phase = (x * np.cos(angle) + y * np.sin(angle)) / period
    return _blend((np.floor(phase) % 2).astype(np.float64), _colour(rng, 0, 100), _colour(rng, 155, 256))


def checkerboard(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Axis-aligned squares of 8-32 px in two colours."""
    x, y = _grid(width, height)
    cell = rng.integers(8, 33)
    mask = ((x // cell + y // cell) % 2).astype(np.float64)
    return _blend(mask, _colour(rng, 0, 120), _colour(rng, 136, 256))


def circles(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Concentric rings, 4-12 px wide, around a random centre, with a soft sinusoidal profile."""
    x, y = _grid(width, height)
    cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
    ring = rng.uniform(4, 12)
    mask = 0.5 + 0.5 * np.sin(np.hypot(x - cx, y - cy) * np.pi / ring)
    return _blend(mask, _colour(rng), _colour(rng))


def noise(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Blurred colour noise: a grainy texture with no structure."""
    raw = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    img = Image.fromarray(raw).filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.5)))
    tint = Image.new("RGB", img.size, tuple(int(c) for c in _colour(rng)))
    return Image.blend(img, tint, rng.uniform(0.2, 0.5))


def shapes(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """One to four filled ellipses, rectangles or triangles on a flat pale background."""
    img = Image.new("RGB", (width, height), tuple(int(c) for c in _colour(rng, 190, 256)))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(1, 5)):
        x0, y0 = rng.uniform(0, 0.6) * width, rng.uniform(0, 0.6) * height
        x1, y1 = x0 + rng.uniform(0.2, 0.4) * width, y0 + rng.uniform(0.2, 0.4) * height
        fill = tuple(int(c) for c in _colour(rng, 0, 160))
        shape = rng.integers(0, 3)
        if shape == 0:
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        elif shape == 1:
            draw.rectangle((x0, y0, x1, y1), fill=fill)
        else:
            draw.polygon([(x0, y1), ((x0 + x1) / 2, y0), (x1, y1)], fill=fill)
    return img


GENERATORS: dict[str, Callable[[np.random.Generator, int, int], Image.Image]] = {
    "gradient": gradient,
    "stripes": stripes,
    "checkerboard": checkerboard,
    "circles": circles,
    "noise": noise,
    "shapes": shapes,
}


# --- sample assembly ---------------------------------------------------------------------------------------------


def _encode(img: Image.Image, fmt: str, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    if fmt == "JPEG":
        img.save(buf, format="JPEG", quality=quality)
    else:
        img.save(buf, format="PNG")
    return buf.getvalue()


def near_duplicate(rng: np.random.Generator, img: Image.Image) -> bytes:
    """The same picture re-saved: a 2-8 % border crop, brightness within ±10 %, JPEG quality 60-90."""
    width, height = img.size
    dx, dy = int(width * rng.uniform(0.02, 0.08)), int(height * rng.uniform(0.02, 0.08))
    cropped = img.crop((dx, dy, width - dx, height - dy))
    brighter = ImageEnhance.Brightness(cropped).enhance(rng.uniform(0.9, 1.1))
    return _encode(brighter, "JPEG", quality=int(rng.integers(60, 91)))


def resized_copy(rng: np.random.Generator, img: Image.Image) -> bytes:
    """A repost as platforms make them: shrunk to 60-95 % and re-encoded as JPEG at quality 50-85."""
    scale = rng.uniform(0.6, 0.95)
    width, height = (max(MIN_SIDE // 2, int(side * scale)) for side in img.size)
    return _encode(img.resize((width, height), Image.Resampling.BICUBIC), "JPEG", quality=int(rng.integers(50, 86)))


def broken_files(rng: np.random.Generator) -> dict[str, bytes]:
    """A truncated JPEG, an HTML page named .jpg and an empty file."""
    jpeg = _encode(gradient(rng, 128, 128), "JPEG")
    html = b"<!DOCTYPE html>\n<html><body><h1>This content is no longer available</h1></body></html>\n"
    return dict(zip(BROKEN_FILES, (jpeg[: len(jpeg) // 2], html, b""), strict=True))


def _plan(n_images: int) -> tuple[int, int, int]:
    """(originals, near-duplicates, reposts) so that they and the broken files add up to n_images."""
    n_dups = int(n_images * NEAR_DUPLICATE_FRACTION)
    n_reposts = max(1, int(n_images * REPOST_FRACTION))
    return n_images - n_dups - n_reposts - len(BROKEN_FILES), n_dups, n_reposts


def make_sample(
    outdir: str | Path, *, n_images: int = 300, seed: int = 0, url_prefix: str = "", together: bool = False
) -> SampleInfo:
    """Write the demo sample into ``outdir``: ``images/`` and the manifest ``urls.csv``.

    Parameters
    ----------
    outdir : str or Path
        Folder to write into (created; existing sample files are overwritten).
    n_images : int, default 300
        Manifest rows: originals spread evenly over the six kinds, 10 % near-duplicates, 10 % reposts of viral
        images, 3 broken files; with ``together``, the 6 copies posted together come on top. At least 11.
    seed : int, default 0
        The same seed writes byte-identical files and manifest.
    together : bool, default False
        Add the pictures three accounts post together (TOGETHER_IMAGES originals of a viral kind, each copied by
        the two other accounts within seconds); drawn from a stream of their own, so the rest stays as without.
    url_prefix : str, default ""
        Prepended to each relative path to form the ``url`` column, e.g. ``http://127.0.0.1:8000/`` for the dev
        server; empty leaves relative paths, which the download stage reads from disk relative to its working
        directory.

    Returns
    -------
    SampleInfo
    """
    if n_images < MIN_IMAGES:
        raise ValueError(
            f"n_images must be at least {MIN_IMAGES} (an original per kind, a repost and the broken files), "
            f"got {n_images}"
        )
    rng = np.random.default_rng(seed)
    outdir = Path(outdir)
    (outdir / IMAGES).mkdir(parents=True, exist_ok=True)
    n_originals, n_dups, n_reposts = _plan(n_images)
    rows: list[dict] = []
    originals: list[tuple[dict, Image.Image]] = []
    for i in range(n_originals):
        kind = KINDS[i % len(KINDS)]
        width, height = (int(s) for s in rng.integers(MIN_SIDE, MAX_SIDE + 1, size=2))
        img = GENERATORS[kind](rng, width, height)
        fmt = "JPEG" if rng.uniform() < 0.5 else "PNG"
        row = {"kind": kind, "name": f"{kind}.{'jpg' if fmt == 'JPEG' else 'png'}", "data": _encode(img, fmt)}
        rows.append(row)
        originals.append((row, img))
    for _ in range(n_dups):
        source, img = originals[int(rng.integers(0, len(originals)))]
        data = near_duplicate(rng, img)
        rows.append({"kind": source["kind"], "name": f"{source['kind']}-dup.jpg", "data": data, "source": source})
    rows.extend(_reposts(rng, originals, n_reposts))
    for name, data in broken_files(rng).items():
        rows.append({"kind": BROKEN, "name": name, "data": data})
    order = rng.permutation(len(rows))  # interleave kinds, as posts in a real table would be
    rows = [rows[i] for i in order]
    # The pictures posted together draw from a random stream of their own: the rest of the sample stays as it was.
    own = np.random.default_rng([seed, 26])
    if together:
        rows.extend(_posted_together(own, originals, rows))
    return _write(outdir, rows, (rng, own), url_prefix)


def _reposts(rng: np.random.Generator, originals: list[tuple[dict, Image.Image]], n_reposts: int) -> list[dict]:
    """``n_reposts`` rows spread over a few viral originals: byte-identical copies and resized re-encodings."""
    candidates = [pair for pair in originals if pair[0]["kind"] in VIRAL_KINDS]
    n_viral = min(len(candidates), max(1, round(n_reposts / REPOSTS_PER_VIRAL)))
    viral = [candidates[i] for i in sorted(rng.choice(len(candidates), size=n_viral, replace=False))]
    rows = []
    for index in range(n_reposts):
        source, img = viral[index % n_viral]
        exact = rng.uniform() < EXACT_REPOST_SHARE
        data = source["data"] if exact else resized_copy(rng, img)
        suffix = source["name"].rsplit(".", 1)[1] if exact else "jpg"
        rows.append(
            {"kind": source["kind"], "name": f"{source['kind']}-repost.{suffix}", "data": data, "viral": source}
        )
    return rows


def _posted_together(
    rng: np.random.Generator, originals: list[tuple[dict, Image.Image]], rows: list[dict]
) -> list[dict]:
    """Three originals of a viral kind (not already viral) posted by every account of TOGETHER_ACCOUNTS within
    seconds, on three different days: the first account's post is the original, then an exact copy and a re-encoded,
    resized copy. Returns the copies; the originals are marked."""
    viral = {id(row["viral"]) for row in rows if "viral" in row}  # reposted originals keep their own story
    candidates = [pair for pair in originals if pair[0]["kind"] in VIRAL_KINDS and id(pair[0]) not in viral]
    chosen = [candidates[i] for i in sorted(rng.choice(len(candidates), size=TOGETHER_IMAGES, replace=False))]
    accounts = sample_posts.TOGETHER_ACCOUNTS
    copies = []
    for k, (source, img) in enumerate(chosen):
        moment = sample_posts.together_time(k)
        source["together"] = (moment, accounts[0])
        gaps = sorted(int(g) for g in rng.integers(3, 40, size=len(accounts) - 1))
        for j, (account, gap) in enumerate(zip(accounts[1:], gaps, strict=True)):
            exact = j == 0
            data = source["data"] if exact else resized_copy(rng, img)
            suffix = source["name"].rsplit(".", 1)[1] if exact else "jpg"
            copies.append(
                {
                    "kind": source["kind"],
                    "name": f"{source['kind']}-together.{suffix}",
                    "data": data,
                    "together": (sample_posts.after(moment, gap), account),
                    "posted_with": source,
                }
            )
    return copies


def _write(outdir: Path, rows: list[dict], rngs: tuple[np.random.Generator, np.random.Generator], url_prefix: str):
    for index, row in enumerate(rows):
        row["post_id"] = f"p{index:05d}"
        row["path"] = f"{IMAGES}/{row['post_id']}_{row['name']}"
        (outdir / row["path"]).write_bytes(row["data"])
    _add_posts(rows, *rngs)
    manifest = outdir / MANIFEST
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    "post_id": row["post_id"],
                    "url": url_prefix + row["path"],
                    "path": row["path"],
                    "kind": row["kind"],
                    "duplicate_of": row["source"]["post_id"] if "source" in row else "",
                    "repost_of": row["viral"]["post_id"] if "viral" in row else "",
                    "posted_with": row["posted_with"]["post_id"] if "posted_with" in row else "",
                    "post_text": row["post_text"],
                    "created_at": row["created_at"].isoformat() if row["created_at"] else "",
                    "account": row["account"],
                }
            )
    return SampleInfo(
        outdir=outdir,
        manifest=manifest,
        n_rows=len(rows),
        counts=dict(Counter(row["kind"] for row in rows)),
        near_duplicates=sum("source" in row for row in rows),
        reposts=sum("viral" in row for row in rows),
        together=sum("together" in row for row in rows),
    )


def _add_posts(rows: list[dict], rng: np.random.Generator, together: np.random.Generator) -> None:
    """Text, date and account of every row; reposts after (and mostly by others than) their viral original; the
    pictures posted together at their planned times by their planned accounts."""
    for row in sorted(rows, key=lambda r: "viral" in r):  # originals first: reposts need their date
        if "posted_with" in row:  # a copy posted together: its own stream
            row["post_text"] = sample_posts.caption(together, row["kind"])
            row["created_at"], row["account"] = row["together"]
            continue
        row["post_text"] = sample_posts.caption(rng, row["kind"])
        if "viral" in row:
            row["created_at"] = sample_posts.repost_time(rng, row["viral"]["created_at"])
            row["account"] = sample_posts.posting_account(rng, row["kind"], repost=True)
        else:
            row["created_at"] = sample_posts.posting_time(rng, row["kind"])
            row["account"] = sample_posts.posting_account(rng, row["kind"])
        if "together" in row:  # drawn as any original (the stream stays), then placed as planned
            row["created_at"], row["account"] = row["together"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m clustering.devtools.sample", description=__doc__.splitlines()[0])
    parser.add_argument("outdir", help="folder to write the sample into")
    parser.add_argument("--n-images", type=int, default=300, help="manifest rows in total (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--url-prefix", default="", help="prefix for the url column, e.g. http://127.0.0.1:8000/")
    args = parser.parse_args(argv)
    info = make_sample(args.outdir, n_images=args.n_images, seed=args.seed, url_prefix=args.url_prefix)
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(info.counts.items()))
    print(f"wrote {info.n_rows} rows to {info.manifest} ({summary})")


if __name__ == "__main__":
    main()
