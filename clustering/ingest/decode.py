"""Decode stage: image bytes to a checked, upright RGB image, a JPEG thumbnail and a CLIP-ready uint8 crop.

Pure functions, no I/O. Rows the download stage already failed pass through untouched; rows with content end as
``ok`` or as one of:

- ``not_image``: unidentifiable bytes (``"not an image (HTML, 5120 bytes)"``: the kind and size, never the bytes
  themselves, which may be any file a URL table names) or a format outside
  ``DecodeOptions.formats`` (``"format SVG not allowed"``; SVG is detected by sniffing since Pillow cannot open it).
- ``too_large``: the header announces more than ``max_pixels`` pixels, checked before any pixel is decoded; Pillow's
  own decompression-bomb guard (``Image.MAX_IMAGE_PIXELS``, left at its default) maps here too, so the effective cap is
  ``min(max_pixels, Image.MAX_IMAGE_PIXELS)``.
- ``too_small``: the shorter side is under ``min_side``.
- ``decode_error``: truncated or corrupt data (truncated images are never half-decoded into grey padding).

The uint8 crop is what ``CLIPImageProcessor`` computes on its PIL path before rescaling and normalising: bicubic resize
of the shortest edge to ``spec.resize`` (long edge truncated with ``int()``, as transformers'
``get_resize_output_image_size`` does), then a centre crop with transformers' offsets and zero padding.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import struct
import threading
import warnings
from collections.abc import Callable, Mapping

import numpy as np
import pyarrow as pa
from PIL import Image, ImageOps, UnidentifiedImageError

from clustering import schema
from clustering.config import DecodeOptions, PreprocessSpec
from clustering.schema import Status

EXIF_ORIENTATION = 0x0112
# Orientations 5-8 rotate by 90 degrees, so the upright image has width and height swapped.
TRANSPOSED_ORIENTATIONS = frozenset({5, 6, 7, 8})
# JPEG draft decoding (libjpeg's DCT scaling by 1/2, 1/4, 1/8) to the smallest scale that still covers the size we
# need, so the bicubic CLIP resize that follows only shrinks a little. Measured on 1080-1600 px photo-like JPEGs
# (bench/ingest.py): decode + resize 2x faster than keeping twice the size (Pillow's reducing_gap=2 default), with CLIP
# crops 0.6 grey levels from a full-size decode on average (0.19 at the 2x gap), the error of re-saving at quality 85.
DRAFT_REDUCING_GAP = 1
SNIFF_BYTES = 1024
# What common non-image content starts with (compared lower-cased, after leading whitespace), so a not_image error can
# name it without quoting it.
CONTENT_SIGNATURES = (
    (b"<!doctype html", "HTML"),
    (b"<html", "HTML"),
    (b"<?xml", "XML"),
    (b"{", "JSON"),
    (b"[", "JSON"),
    (b"%pdf-", "PDF"),
    (b"pk\x03\x04", "ZIP archive"),
    (b"\x1f\x8b", "gzip data"),
)
WHITE = (255, 255, 255, 255)
# Image.open runs under a warnings filter that is process-wide; the fetch stage decodes in several threads at once.
_OPEN_LOCK = threading.Lock()
# Errors Pillow raises on corrupt or truncated data, depending on the format plugin.
PIL_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)


@dataclasses.dataclass(frozen=True)
class DecodeResult:
    """Outcome of decoding one image.

    Attributes
    ----------
    status : str
        ``ok`` or ``not_image``, ``too_large``, ``too_small``, ``decode_error``.
    error : str or None
        Short human-readable reason; None when ok.
    width, height : int or None
        Original size after EXIF orientation, when the header could be read.
    sha256 : str or None
        Hex SHA-256 of the raw bytes (exact duplicates), whenever there were bytes.
    thumbnail : bytes or None
        JPEG, longest side ``thumbnail_size`` (never upscaled); None unless ok.
    pixels : bytes or None
        uint8 RGB crop of shape ``(crop_h, crop_w, 3)`` in C order; None unless ok.
    """

    status: str
    error: str | None = None
    width: int | None = None
    height: int | None = None
    sha256: str | None = None
    thumbnail: bytes | None = None
    pixels: bytes | None = None


class _Rejected(Exception):
    """An image that fails a check; carries its status, message and the size if known."""

    def __init__(self, status: Status, message: str, size: tuple[int, int] | None = None):
        super().__init__(message)
        self.status, self.message, self.size = status, message, size


# --- identification and checks -----------------------------------------------------------------------------------


def describe_content(content: bytes) -> str:
    """What unidentifiable bytes are, for the ``not_image`` error: a kind and a size, never the bytes themselves."""
    if not content:
        return "not an image (empty content)"
    head = content[:SNIFF_BYTES].lstrip().lower()
    kind = next((name for signature, name in CONTENT_SIGNATURES if head.startswith(signature)), None)
    if kind is None:
        kind = "text" if _looks_like_text(content[:SNIFF_BYTES]) else "binary data"
    return f"not an image ({kind}, {len(content)} bytes)"


def _looks_like_text(sample: bytes) -> bool:
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:  # a character cut off at the end of the sample is still text
        return exc.start >= len(sample) - 3
    return True


def _is_svg(content: bytes) -> bool:
    head = content[:1024].lstrip().lower()
    return head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head)


def _open(content: bytes) -> Image.Image:
    """Identify the image lazily (header only); map Pillow's refusals to statuses."""
    try:
        # Pillow warns, rather than raises, between 1x and 2x MAX_IMAGE_PIXELS; make that a refusal too. The filter
        # is process-wide while it is set (Python < 3.14), but only for the one header parse of Image.open.
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(content))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _Rejected(Status.TOO_LARGE, f"decompression bomb: {exc}".split(", could be")[0]) from None
    except UnidentifiedImageError:
        if _is_svg(content):
            raise _Rejected(Status.NOT_IMAGE, "format SVG not allowed") from None
        raise _Rejected(Status.NOT_IMAGE, describe_content(content)) from None
    except PIL_DECODE_ERRORS as exc:
        raise _Rejected(Status.DECODE_ERROR, f"unreadable image header: {exc}") from None


def _check_header(img: Image.Image, options: DecodeOptions) -> None:
    if img.format not in options.formats:
        raise _Rejected(Status.NOT_IMAGE, f"format {img.format} not allowed")
    width, height = img.size
    if width * height > options.max_pixels:
        message = f"{width}x{height} = {width * height} pixels, over max_pixels {options.max_pixels}"
        raise _Rejected(Status.TOO_LARGE, message, img.size)
    if min(width, height) < options.min_side:
        raise _Rejected(Status.TOO_SMALL, f"{width}x{height}, shorter side under min_side {options.min_side}", img.size)


def _orientation(img: Image.Image) -> int:
    """EXIF orientation 1-8; 1 when absent or unreadable (browsers also ignore broken EXIF)."""
    try:
        value = img.getexif().get(EXIF_ORIENTATION, 1)
    except PIL_DECODE_ERRORS:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


# --- pixels ------------------------------------------------------------------------------------------------------


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any mode to RGB: transparency composited onto white, 16-bit scaled to 8-bit (not clipped)."""
    if "A" in img.getbands() or img.info.get("transparency") is not None:
        rgba = img.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", img.size, WHITE), rgba).convert("RGB")
    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        # Pillow's convert() clips these to 0..255, which turns most 16-bit images white; keep the top 8 bits.
        values = np.asarray(img).astype(np.float64)
        if img.mode.startswith("I;16") or values.max(initial=0) > 255:
            values = values / 256.0
        return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8)).convert("RGB")
    return img if img.mode == "RGB" else img.convert("RGB")


def clip_resize_size(width: int, height: int, shortest_edge: int) -> tuple[int, int]:
    """``(width, height)`` after resizing the shortest edge to ``shortest_edge``, as transformers computes it.

    transformers' ``get_resize_output_image_size(..., default_to_square=False)`` truncates the long edge with
    ``int(shortest_edge * long / short)``; rounding instead would differ by a pixel for many aspect ratios.
    """
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(shortest_edge * long / short)
    return (shortest_edge, new_long) if width <= height else (new_long, shortest_edge)


def center_crop(pixels: np.ndarray, crop: tuple[int, int]) -> np.ndarray:
    """Centre-crop an ``(H, W, C)`` array to ``crop = (h, w)`` with transformers' ``center_crop`` offsets.

    Offsets are ``(H - h) // 2``; an image smaller than the crop is zero-padded, centred with ``ceil`` as there.
    """
    crop_h, crop_w = crop
    height, width = pixels.shape[:2]
    if height >= crop_h and width >= crop_w:
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        return pixels[top : top + crop_h, left : left + crop_w]
    new_h, new_w = max(crop_h, height), max(crop_w, width)
    padded = np.zeros((new_h, new_w, *pixels.shape[2:]), dtype=pixels.dtype)
    pad_top, pad_left = math.ceil((new_h - height) / 2), math.ceil((new_w - width) / 2)
    padded[pad_top : pad_top + height, pad_left : pad_left + width] = pixels
    top, left = (height - crop_h) // 2 + pad_top, (width - crop_w) // 2 + pad_left
    return padded[max(0, top) : top + crop_h, max(0, left) : left + crop_w]


def clip_resize(rgb: Image.Image, spec: PreprocessSpec) -> Image.Image:
    """Bicubic resize of the shortest edge to ``spec.resize``, as CLIPImageProcessor does before cropping."""
    return rgb.resize(clip_resize_size(rgb.width, rgb.height, spec.resize), Image.Resampling.BICUBIC)


def clip_pixels(rgb: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """uint8 ``(crop_h, crop_w, 3)`` array: bicubic shortest-edge resize, then centre crop (CLIPImageProcessor)."""
    return _crop(clip_resize(rgb, spec), spec)


def _crop(resized: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    return np.ascontiguousarray(center_crop(np.asarray(resized), spec.crop))


def make_thumbnail(rgb: Image.Image, options: DecodeOptions) -> bytes:
    """JPEG bytes with the longest side ``options.thumbnail_size`` (smaller images keep their size)."""
    thumb = rgb.copy()
    thumb.thumbnail((options.thumbnail_size, options.thumbnail_size), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    thumb.save(buf, format="JPEG", quality=options.thumbnail_quality)
    return buf.getvalue()


def _thumbnail_source(rgb: Image.Image, resized: Image.Image, options: DecodeOptions) -> Image.Image:
    """The CLIP-resized image when it is a downscale still larger than the thumbnail, else the decoded one.

    The resized image holds the whole picture (the crop comes later), so shrinking it to 128 px costs a few hundred
    thousand pixels instead of the millions of the decoded image; an upscaled small image would break the rule that
    small images keep their size.
    """
    downscaled = resized.width <= rgb.width and resized.height <= rgb.height
    return resized if downscaled and max(resized.size) >= options.thumbnail_size else rgb


def _needed_side(options: DecodeOptions, spec: PreprocessSpec) -> int:
    return max(spec.resize, *spec.crop, options.thumbnail_size)


def _load_upright_rgb(img: Image.Image, needed: int) -> tuple[Image.Image, tuple[int, int]]:
    """Decode (at reduced size for big JPEGs), apply EXIF orientation, convert to RGB; also the upright full size."""
    width, height = img.size
    if img.format in ("JPEG", "MPO"):
        target = needed * DRAFT_REDUCING_GAP
        img.draft("RGB", (target, target))  # no-op unless both sides are at least 2x target
    img.load()  # decodes the first frame only, for animations
    orientation = _orientation(img)  # after load: PNG may keep its EXIF after the pixel data
    if orientation in TRANSPOSED_ORIENTATIONS:
        width, height = height, width
    if orientation != 1:
        img = ImageOps.exif_transpose(img)
    return to_rgb(img), (width, height)


# --- public API --------------------------------------------------------------------------------------------------


def decode_image(content: bytes, options: DecodeOptions, spec: PreprocessSpec) -> DecodeResult:
    """Decode one image into its thumbnail and CLIP crop; never raises on bad bytes.

    Parameters
    ----------
    content : bytes
        The raw file as downloaded.
    options : DecodeOptions
        Accepted formats, pixel and size limits, thumbnail size and quality.
    spec : PreprocessSpec
        Resize and crop of the model's image processor (see :func:`preprocess_spec_from_processor`).

    Returns
    -------
    DecodeResult
    """
    digest = hashlib.sha256(content).hexdigest()
    size: tuple[int, int] | None = None
    try:
        if not content:
            raise _Rejected(Status.NOT_IMAGE, "not an image (empty content)")
        with _open(content) as img:
            _check_header(img, options)
            rgb, size = _load_upright_rgb(img, _needed_side(options, spec))
            resized = clip_resize(rgb, spec)  # once: it serves both the crop and the thumbnail
            thumbnail = make_thumbnail(_thumbnail_source(rgb, resized, options), options)
            pixels = _crop(resized, spec).tobytes()
    except _Rejected as exc:
        width, height = exc.size if exc.size else (None, None)
        return DecodeResult(exc.status.value, exc.message, width, height, digest)
    except Image.DecompressionBombError as exc:  # raised by some plugins while loading, after our header check
        return DecodeResult(Status.TOO_LARGE.value, f"decompression bomb: {exc}", *(size or (None, None)), digest)
    except PIL_DECODE_ERRORS as exc:
        return DecodeResult(Status.DECODE_ERROR.value, f"corrupt image: {exc}", *(size or (None, None)), digest)
    except Exception as exc:  # last resort: a Pillow plugin bug on one file must not abort the whole batch
        error = f"corrupt image: {type(exc).__name__}: {exc}"
        return DecodeResult(Status.DECODE_ERROR.value, error, *(size or (None, None)), digest)
    return DecodeResult(Status.OK.value, None, size[0], size[1], digest, thumbnail, pixels)


def decode_batch(
    batch: pa.Table,
    *,
    options: DecodeOptions,
    spec: PreprocessSpec,
    decoder: Callable[[bytes, DecodeOptions, PreprocessSpec], DecodeResult] | None = None,
) -> pa.Table:
    """Decode the ``ok`` rows of a download batch.

    Parameters
    ----------
    batch : pyarrow.Table
        Output of :class:`clustering.ingest.download.Downloader`: ``status``, ``error`` and ``content`` at least.
    options : DecodeOptions
        See :func:`decode_image`.
    spec : PreprocessSpec
        See :func:`decode_image`.
    decoder : callable, optional
        Decodes one image (default :func:`decode_image`); the fetch stage passes the one it runs in its child process.

    Returns
    -------
    pyarrow.Table
        Same rows in the same order, ``content`` dropped, ``status``/``error`` updated, and ``width``, ``height``
        (int32), ``sha256`` (string), ``thumbnail`` and ``pixels`` (binary) added. Rows not ``ok`` on input keep their
        status and error and get nulls.
    """
    statuses = batch.column(schema.STATUS).to_pylist()
    errors = batch.column(schema.ERROR).to_pylist()
    has_content = schema.CONTENT in batch.column_names
    contents = batch.column(schema.CONTENT).to_pylist() if has_content else [None] * batch.num_rows
    decoder = decoder or decode_image
    results = []
    for status, error, content in zip(statuses, errors, contents, strict=True):
        if status != Status.OK.value:
            results.append(DecodeResult(status, error))
        elif content is None:
            results.append(DecodeResult(Status.DECODE_ERROR.value, "no content to decode"))
        else:
            results.append(decoder(content, options, spec))
    if has_content:
        batch = batch.drop_columns([schema.CONTENT])
    columns = {
        schema.STATUS: pa.array([r.status for r in results], pa.string()),
        schema.ERROR: pa.array([r.error for r in results], pa.string()),
        schema.WIDTH: pa.array([r.width for r in results], pa.int32()),
        schema.HEIGHT: pa.array([r.height for r in results], pa.int32()),
        schema.SHA256: pa.array([r.sha256 for r in results], pa.string()),
        schema.THUMBNAIL: pa.array([r.thumbnail for r in results], pa.binary()),
        schema.PIXELS: pa.array([r.pixels for r in results], pa.binary()),
    }
    for name, array in columns.items():
        batch = schema.set_column(batch, name, array)
    return batch


def _size_field(size: object, key: str) -> int | None:
    """``size[key]`` for transformers' SizeDict (attributes), a plain dict, or None."""
    if size is None:
        return None
    if isinstance(size, Mapping):
        return size.get(key)
    return getattr(size, key, None)


def preprocess_spec_from_processor(processor: object) -> PreprocessSpec:
    """Read resize, crop, mean and std from a ``CLIPImageProcessor`` (or any processor with the same attributes).

    Parameters
    ----------
    processor : CLIPImageProcessor
        ``size`` is ``{"shortest_edge": n}`` (CLIP's form), ``{"height": h, "width": w}`` or an int;
        ``crop_size`` is ``{"height": h, "width": w}`` or an int.

    Returns
    -------
    PreprocessSpec

    Notes
    -----
    The ``{"height", "width"}`` size form squashes the image to exactly that size in transformers; this pipeline
    always keeps the aspect ratio, so it maps to a shortest-edge resize of ``min(height, width)`` followed by the
    centre crop. That matches transformers for square inputs only; CLIP checkpoints use the shortest-edge form.
    A processor without ``crop_size`` gets a square crop of ``resize``.
    """
    size = processor.size
    if isinstance(size, int):
        resize = size
    elif _size_field(size, "shortest_edge"):
        resize = int(_size_field(size, "shortest_edge"))
    elif _size_field(size, "height") and _size_field(size, "width"):
        resize = min(int(_size_field(size, "height")), int(_size_field(size, "width")))
    else:
        raise ValueError(f"processor.size must have shortest_edge or height and width, got {size!r}")
    crop_size = getattr(processor, "crop_size", None)
    if isinstance(crop_size, int):
        crop = (crop_size, crop_size)
    elif _size_field(crop_size, "height") and _size_field(crop_size, "width"):
        crop = (int(_size_field(crop_size, "height")), int(_size_field(crop_size, "width")))
    elif crop_size is None:
        crop = (resize, resize)
    else:
        raise ValueError(f"processor.crop_size must have height and width, got {crop_size!r}")
    mean = tuple(float(m) for m in processor.image_mean)
    std = tuple(float(s) for s in processor.image_std)
    if len(mean) != 3 or len(std) != 3:
        raise ValueError(f"image_mean and image_std must have 3 values, got {mean!r} and {std!r}")
    return PreprocessSpec(resize=resize, crop=crop, mean=mean, std=std)
