"""Image fixtures: generated test images of every awkward kind, and a real HTTP server over them on 127.0.0.1.

Session-scoped and shared by the download, decode and end-to-end tests (names are stable):

- ``image_dir``: a folder of generated files, one per case in :data:`EXPECTED_STATUS`.
- ``image_server``: a :class:`clustering.devtools.devserver.ImageServer` over ``image_dir`` (with the ``/bad/...``
  routes of :data:`ROUTE_STATUS`). It listens on 127.0.0.1, which the download stage blocks by default: end-to-end
  tests set ``DownloadOptions(allow_private_networks=True)`` or pass ``trusted_networks=("127.0.0.1/32",)`` to
  ``Downloader``.

:data:`EXPECTED_STATUS` is the final status of each file after download and decode with default options;
:data:`ROUTE_STATUS` the status of each bad route with :data:`FAST_DOWNLOAD` options (short timeouts, small cap).
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from clustering.devtools.devserver import ImageServer

# File name -> status after download + decode with default DecodeOptions.
EXPECTED_STATUS = {
    "photo.jpg": "ok",  # 320x240 RGB JPEG
    "alpha.png": "ok",  # RGBA: left half fully transparent red, right half opaque blue
    "animated.gif": "ok",  # 3 frames: red, green, blue
    "photo.webp": "ok",
    "rotated.jpg": "ok",  # stored 200x100 with EXIF orientation 6: upright 100x200
    "cmyk.jpg": "ok",
    "gray16.png": "ok",  # 16-bit greyscale, uniform 0x8000
    "palette.png": "ok",  # P mode, index 0 transparent (left half), index 1 green
    "truncated.jpg": "decode_error",  # the first half of a JPEG
    "bomb.png": "too_large",  # a PNG header claiming 30000x30000 pixels
    "tiny.png": "too_small",  # 4x4
    "page.html": "not_image",
    "fake.jpg": "not_image",  # HTML saved with a .jpg name (served as image/jpeg)
    "drawing.svg": "not_image",
    "empty.jpg": "not_image",  # zero bytes
}
BOMB_SIDE = 30_000

# Download options for tests: small timeouts so slow routes end fast, retries quick, the local server and local
# files allowed (tests of the defaults that refuse both turn them off explicitly).
FAST_DOWNLOAD = {
    "connect_timeout": 0.5,
    "read_timeout": 0.5,
    "retries": 2,
    "backoff_base": 0.01,
    "retry_after_cap": 0.05,
    "max_bytes": 1_000_000,
    "allow_private_networks": True,
    "allow_local_files": True,
}

# Route -> status of the download stage with FAST_DOWNLOAD options (fresh counters: use each stateful route once or
# with your own /<key> suffix).
ROUTE_STATUS = {
    "bad/404": "http_error",
    "bad/500": "http_error",
    "bad/flaky/fixture": "ok",  # 500, 500, then 200: needs retries >= 2
    "bad/429/fixture": "ok",  # 429 + Retry-After once, then 200
    "bad/slow": "timeout",
    "bad/slow-body": "timeout",
    "bad/endless": "too_large",
    "bad/big": "too_large",
    "bad/redirect-loop": "http_error",
    "bad/redirect/3": "ok",
    "bad/html": "ok",  # downloads fine; decode then says not_image
}

HTML_PAGE = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><form></form></body></html>\n"
SVG_DRAWING = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"></svg>\n'


def _photo(width: int = 320, height: int = 240) -> Image.Image:
    """A smooth gradient with a few shapes: compresses like a photo, nothing degenerate."""
    x = np.linspace(0, 255, width)[None, :]
    y = np.linspace(0, 255, height)[:, None]
    rgb = np.stack([x + 0 * y, y + 0 * x, (x + y) / 2], axis=-1).astype(np.uint8)
    img = Image.fromarray(rgb)
    draw = ImageDraw.Draw(img)
    draw.ellipse((width // 4, height // 4, width // 2, height // 2), fill=(250, 250, 20))
    draw.rectangle((width // 2, height // 2, 3 * width // 4, 7 * height // 8), fill=(20, 20, 160))
    return img


def _encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bomb_png(side: int = BOMB_SIDE) -> bytes:
    """A tiny PNG whose IHDR claims ``side`` x ``side`` RGB pixels (a decompression-bomb header)."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)  # 8-bit truecolour, no interlace
    idat = zlib.compress(b"\x00" * 64)  # a sliver of data: the header alone must be enough to refuse it
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _alpha_png() -> bytes:
    img = Image.new("RGBA", (100, 80), (0, 0, 255, 255))
    ImageDraw.Draw(img).rectangle((0, 0, 49, 79), fill=(255, 0, 0, 0))
    return _encode(img, "PNG")


def _animated_gif() -> bytes:
    frames = [Image.new("RGB", (64, 64), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _rotated_jpeg() -> bytes:
    img = _photo(200, 100)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": upright it is 100 wide, 200 high
    return _encode(img, "JPEG", quality=90, exif=exif)


def _palette_png() -> bytes:
    img = Image.new("P", (64, 64), 1)
    img.putpalette([255, 0, 0, 0, 200, 0] + [0, 0, 0] * 254)  # index 0 red (but transparent), 1 green
    ImageDraw.Draw(img).rectangle((0, 0, 31, 63), fill=0)
    return _encode(img, "PNG", transparency=0)


def make_test_images() -> dict[str, bytes]:
    """Bytes of every file in :data:`EXPECTED_STATUS`, generated with Pillow (deterministic)."""
    photo_jpeg = _encode(_photo(), "JPEG", quality=90)
    files = {
        "photo.jpg": photo_jpeg,
        "alpha.png": _alpha_png(),
        "animated.gif": _animated_gif(),
        "photo.webp": _encode(_photo(120, 90), "WEBP", quality=80),
        "rotated.jpg": _rotated_jpeg(),
        "cmyk.jpg": _encode(_photo(80, 60).convert("CMYK"), "JPEG", quality=90),
        "gray16.png": _encode(Image.fromarray(np.full((48, 48), 0x8000, dtype=np.uint16)), "PNG"),
        "palette.png": _palette_png(),
        "truncated.jpg": photo_jpeg[: len(photo_jpeg) // 2],
        "bomb.png": bomb_png(),
        "tiny.png": _encode(Image.new("RGB", (4, 4), (9, 9, 9)), "PNG"),
        "page.html": HTML_PAGE,
        "fake.jpg": HTML_PAGE,
        "drawing.svg": SVG_DRAWING,
        "empty.jpg": b"",
    }
    assert files.keys() == EXPECTED_STATUS.keys()
    return files


def write_test_images(outdir: str | Path) -> Path:
    """Write :func:`make_test_images` into ``outdir`` and return it."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    for name, data in make_test_images().items():
        (outdir / name).write_bytes(data)
    return outdir


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory) -> Path:
    """Folder of generated test images, one per entry of :data:`EXPECTED_STATUS` (read-only: shared by the session)."""
    return write_test_images(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="session")
def image_server(image_dir):
    """An :class:`~clustering.devtools.devserver.ImageServer` over ``image_dir`` on 127.0.0.1 for the session.

    ``image_server.url("photo.jpg")`` is a file, ``image_server.url("bad/404")`` a bad route; ``image_server.hits``
    counts requests per path. Its address is loopback: allow it (see the module docstring) or downloads are blocked.
    """
    with ImageServer(image_dir, slow_seconds=3.0) as server:
        yield server
