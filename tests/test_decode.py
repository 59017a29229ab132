"""Decode stage on generated images: statuses, orientation, colour modes, thumbnails and CLIP-exact preprocessing."""

from __future__ import annotations

import hashlib
import io
import types

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image, ImageOps

from clustering.config import DecodeOptions, PreprocessSpec
from clustering.ingest.decode import (
    center_crop,
    clip_pixels,
    clip_resize_size,
    decode_batch,
    decode_image,
    preprocess_spec_from_processor,
)
from clustering.schema import PIXELS
from tests.fixtures_images import BOMB_SIDE, EXPECTED_STATUS, _photo

OPTIONS = DecodeOptions()
SPEC = PreprocessSpec()


def decode(image_dir, name, options=OPTIONS, spec=SPEC):
    return decode_image((image_dir / name).read_bytes(), options, spec)


def crop_of(result, spec=SPEC) -> np.ndarray:
    return np.frombuffer(result.pixels, np.uint8).reshape(*spec.crop, 3)


def encode(img: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


# --- statuses ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "status"), EXPECTED_STATUS.items())
def test_fixture_status(image_dir, name, status):
    result = decode(image_dir, name)
    assert result.status == status, result.error
    ok = status == "ok"
    assert (result.error is None) == ok
    assert (result.thumbnail is not None, result.pixels is not None) == (ok, ok)
    assert result.sha256 == hashlib.sha256((image_dir / name).read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("page.html", "not an image (HTML, {size} bytes)"),
        ("drawing.svg", "format SVG not allowed"),
        ("empty.jpg", "not an image (empty content)"),
        ("tiny.png", "4x4, shorter side under min_side 16"),
    ],
)
def test_rejections_say_why(image_dir, name, error):
    assert decode(image_dir, name).error == error.format(size=(image_dir / name).stat().st_size)


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n", "text"),
        (b"LANG=C.UTF-8\x00PATH=/usr/bin\x00AWS_SECRET_ACCESS_KEY=abcd1234\x00", "binary data"),
        (b'  {"token": "s3cr3t-value"}', "JSON"),
        (b"%PDF-1.7 secret report", "PDF"),
        (b"\x00\x01\x02\x03garbage", "binary data"),
    ],
)
def test_not_image_errors_name_kind_and_size_never_the_bytes(content, kind):
    result = decode_image(content, OPTIONS, SPEC)
    assert (result.status, result.error) == ("not_image", f"not an image ({kind}, {len(content)} bytes)")
    quoted = {content[i : i + 4].decode("latin-1") for i in range(len(content) - 3)}
    assert not [q for q in quoted if q.strip() and q in result.error]


def test_truncated_jpeg_is_a_decode_error_not_grey_padding(image_dir):
    result = decode(image_dir, "truncated.jpg")
    assert result.status == "decode_error"
    assert "truncated" in result.error


def test_decompression_bomb_header_is_refused_before_decoding(image_dir):
    # 30000x30000 RGB would need 2.7 GB decoded; the file is a few dozen bytes. The error quotes the header's count.
    result = decode(image_dir, "bomb.png")
    assert result.status == "too_large"
    assert str(BOMB_SIDE * BOMB_SIDE) in result.error


def test_max_pixels_is_checked_from_the_header(image_dir):
    result = decode(image_dir, "photo.jpg", options=DecodeOptions(max_pixels=10_000))
    assert (result.status, result.error) == ("too_large", "320x240 = 76800 pixels, over max_pixels 10000")
    assert (result.width, result.height) == (320, 240)


def test_formats_outside_the_allow_list_are_not_images(image_dir):
    result = decode(image_dir, "alpha.png", options=DecodeOptions(formats=("JPEG",)))
    assert (result.status, result.error) == ("not_image", "format PNG not allowed")


def test_min_side_is_configurable(image_dir):
    assert decode(image_dir, "animated.gif", options=DecodeOptions(min_side=65)).status == "too_small"
    assert decode(image_dir, "animated.gif", options=DecodeOptions(min_side=64)).status == "ok"


# --- geometry and colour -------------------------------------------------------------------------------------------


def test_exif_orientation_is_applied(image_dir):
    result = decode(image_dir, "rotated.jpg")
    assert (result.width, result.height) == (100, 200)  # stored 200x100, orientation 6
    upright = ImageOps.exif_transpose(Image.open(image_dir / "rotated.jpg")).convert("RGB")
    np.testing.assert_array_equal(crop_of(result), clip_pixels(upright, SPEC))
    assert Image.open(io.BytesIO(result.thumbnail)).size == (64, 128)


def test_alpha_is_composited_on_white(image_dir):
    crop = crop_of(decode(image_dir, "alpha.png"))
    # 100x80 -> 280x224 -> crop from x=28: crop columns below 112 show the transparent left half.
    assert crop[112, 10].tolist() == [255, 255, 255]
    assert crop[112, 200].tolist() == [0, 0, 255]


def test_palette_transparency_is_composited_on_white(image_dir):
    crop = crop_of(decode(image_dir, "palette.png"))
    assert crop[112, 10].tolist() == [255, 255, 255]
    assert crop[112, 200].tolist() == [0, 200, 0]


def test_sixteen_bit_is_scaled_not_clipped(image_dir):
    # 0x8000 of 0xFFFF is mid grey; clipping to 255 would give white.
    assert np.unique(crop_of(decode(image_dir, "gray16.png"))).tolist() == [128]


def test_cmyk_becomes_rgb(image_dir):
    result = decode(image_dir, "cmyk.jpg")
    reference = clip_pixels(_photo(80, 60), SPEC).astype(int)
    # JPEG loss on both the CMYK round trip and the comparison: only the overall colours must agree.
    assert np.abs(crop_of(result).astype(int) - reference).mean() < 8


def test_first_frame_of_an_animation(image_dir):
    assert np.unique(crop_of(decode(image_dir, "animated.gif")).reshape(-1, 3), axis=0).tolist() == [[255, 0, 0]]


@pytest.mark.parametrize(("name", "size"), [("photo.jpg", (128, 96)), ("photo.webp", (120, 90))])
def test_thumbnail_is_a_jpeg_with_longest_side_128_never_upscaled(image_dir, name, size):
    thumb = Image.open(io.BytesIO(decode(image_dir, name).thumbnail))
    assert (thumb.format, thumb.size) == ("JPEG", size)


def test_thumbnail_size_and_quality_follow_options(image_dir):
    small = decode(image_dir, "photo.jpg", options=DecodeOptions(thumbnail_size=64, thumbnail_quality=20))
    large = decode(image_dir, "photo.jpg", options=DecodeOptions(thumbnail_size=64, thumbnail_quality=95))
    assert Image.open(io.BytesIO(small.thumbnail)).size == (64, 48)
    assert len(small.thumbnail) < len(large.thumbnail)


def test_large_jpeg_uses_draft_decoding_but_reports_the_full_size():
    content = encode(_photo(1600, 1200), "JPEG", quality=92)
    result = decode_image(content, OPTIONS, SPEC)
    assert (result.width, result.height) == (1600, 1200)
    full = clip_pixels(Image.open(io.BytesIO(content)).convert("RGB"), SPEC).astype(int)
    diff = np.abs(crop_of(result).astype(int) - full)
    # DCT-domain 1/2 scaling then bicubic vs bicubic from full size: different low-pass filters, same picture.
    # Measured mean 0.1 and max 7 grey levels; bounds leave room for other libjpeg builds.
    assert diff.mean() < 1.0
    assert diff.max() <= 24


# --- CLIP preprocessing equivalence --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip_processor_class():
    import transformers  # a hard dependency: its absence is a failure, not a skip

    return transformers.CLIPImageProcessor


@pytest.mark.parametrize(
    ("resize", "crop"),
    [(224, (224, 224)), (64, (48, 40)), (32, (48, 40))],  # the last one pads: crop larger than the resized image
)
@pytest.mark.parametrize("size", [(320, 240), (240, 320), (225, 224), (1000, 97), (97, 1000), (333, 517), (20, 30)])
def test_matches_clip_image_processor(clip_processor_class, resize, crop, size):
    processor = clip_processor_class(size={"shortest_edge": resize}, crop_size={"height": crop[0], "width": crop[1]})
    spec = preprocess_spec_from_processor(processor)
    img = _photo(*size)
    expected = processor(images=img, return_tensors="np")["pixel_values"][0].transpose(1, 2, 0)
    ours = (clip_pixels(img, spec) / np.float32(255) - np.array(spec.mean, np.float32)) / np.array(spec.std, np.float32)
    assert ours.shape == expected.shape
    # Same Pillow bicubic on the same uint8 input and the same crop offsets, so the uint8 crops are identical; what
    # is left is float32 arithmetic order in rescale/normalise, well under one grey level (1/255/std ~ 0.015).
    assert np.abs(ours - expected).max() < 1e-5


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [(320, 240, (298, 224)), (240, 320, (224, 298)), (1000, 97, (2309, 224)), (224, 224, (224, 224))],
)
def test_resize_size_truncates_like_transformers(width, height, expected):
    assert clip_resize_size(width, height, 224) == expected


def test_center_crop_pads_small_images_with_zeros():
    pixels = np.full((2, 3, 3), 9, np.uint8)
    out = center_crop(pixels, (4, 4))
    assert out.shape == (4, 4, 3)
    assert out[:, :, 0].tolist() == [[0, 0, 0, 0], [0, 9, 9, 9], [0, 9, 9, 9], [0, 0, 0, 0]]


def test_spec_from_processor_forms(clip_processor_class):
    spec = preprocess_spec_from_processor(
        clip_processor_class(size={"shortest_edge": 256}, crop_size={"height": 240, "width": 200})
    )
    assert (spec.resize, spec.crop) == (256, (240, 200))
    assert spec.mean == pytest.approx((0.48145466, 0.4578275, 0.40821073))
    square = types.SimpleNamespace(
        size={"height": 300, "width": 320}, crop_size=None, image_mean=[0.5] * 3, image_std=[0.25] * 3
    )
    assert preprocess_spec_from_processor(square) == PreprocessSpec(300, (300, 300), (0.5,) * 3, (0.25,) * 3)
    legacy = types.SimpleNamespace(size=224, crop_size=224, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    assert (preprocess_spec_from_processor(legacy).resize, preprocess_spec_from_processor(legacy).crop) == (
        224,
        (224, 224),
    )
    with pytest.raises(ValueError, match="shortest_edge or height and width"):
        preprocess_spec_from_processor(types.SimpleNamespace(size={"longest_edge": 5}, image_mean=(), image_std=()))


# --- batches -------------------------------------------------------------------------------------------------------


def test_decode_batch_decodes_ok_rows_and_passes_failures_through(image_dir):
    photo = (image_dir / "photo.jpg").read_bytes()
    truncated = (image_dir / "truncated.jpg").read_bytes()
    batch = pa.table(
        {
            "url": ["a", "b", "c", "d"],
            "post_id": ["p1", "p2", "p3", "p4"],
            "status": ["ok", "ok", "http_error", "ok"],
            "error": [None, None, "HTTP 404 Not Found", None],
            "http_status": pa.array([200, 200, 404, 200], pa.int32()),
            "bytes": pa.array([len(photo), len(truncated), None, None], pa.int64()),
            "content": pa.array([photo, truncated, None, None], pa.binary()),
        }
    )
    out = decode_batch(batch, options=OPTIONS, spec=SPEC)
    assert "content" not in out.column_names
    assert out.select(["url", "post_id", "http_status", "bytes"]).equals(
        batch.select(["url", "post_id", "http_status", "bytes"])
    )
    assert out.column("status").to_pylist() == ["ok", "decode_error", "http_error", "decode_error"]
    assert out.column("error").to_pylist()[2:] == ["HTTP 404 Not Found", "no content to decode"]
    assert out.column("width").to_pylist() == [320, None, None, None]
    # The hash is set whenever bytes existed, even when decoding them failed: exact duplicates of broken files too.
    assert out.column("sha256").to_pylist()[:3] == [
        hashlib.sha256(photo).hexdigest(),
        hashlib.sha256(truncated).hexdigest(),
        None,
    ]
    assert [len(p) if p else None for p in out.column(PIXELS).to_pylist()] == [224 * 224 * 3, None, None, None]
    assert out.column("thumbnail").null_count == 3
    types_ = {n: out.schema.field(n).type for n in ("width", "height", "sha256", "thumbnail", PIXELS)}
    assert types_ == {
        "width": pa.int32(),
        "height": pa.int32(),
        "sha256": pa.string(),
        "thumbnail": pa.binary(),
        PIXELS: pa.binary(),
    }


def test_decode_batch_on_every_fixture(image_dir):
    names = list(EXPECTED_STATUS)
    contents = [(image_dir / n).read_bytes() for n in names]
    batch = pa.table(
        {
            "url": names,
            "status": ["ok"] * len(names),
            "error": pa.nulls(len(names), pa.string()),
            "content": pa.array(contents, pa.binary()),
        }
    )
    out = decode_batch(batch, options=OPTIONS, spec=SPEC)
    assert dict(zip(names, out.column("status").to_pylist(), strict=True)) == EXPECTED_STATUS


def test_decode_batch_of_nothing():
    batch = pa.table(
        {
            "url": pa.array([], pa.string()),
            "status": pa.array([], pa.string()),
            "error": pa.array([], pa.string()),
            "content": pa.array([], pa.binary()),
        }
    )
    out = decode_batch(batch, options=OPTIONS, spec=SPEC)
    assert out.num_rows == 0
    assert out.column_names == ["url", "status", "error", "width", "height", "sha256", "thumbnail", PIXELS]
