"""The explorer's per-point data as one compressed binary buffer: typed arrays and text columns, built vectorised.

Every per-point array (coordinates, labels of every level, probabilities, times, dictionary codes, thumbnail indices)
is a little-endian typed array in the smallest type that holds it; every text column is its UTF-8 values joined by
NUL, so the page splits it with one ``TextDecoder`` call and one ``split``. Nothing here makes a Python object per
point: values go from Arrow buffers to NumPy to bytes.

The buffer is gzip-compressed and base64-encoded into the page; the page inflates it with the browser's
``DecompressionStream('gzip')`` (Chromium 80, Firefox 113, Safari 16.4: every current browser), which works offline
from ``file://`` under the page's Content-Security-Policy.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["MAX_TEXT_CHARS", "numeric_array", "pack_arrays", "text_blob"]

# Long texts are cut so one pathological row cannot bloat the page; 2,000 characters hold any social-media post.
MAX_TEXT_CHARS = 2000
# Arrays start on 8-byte boundaries so the page can view each one in place as a typed array (Float64Array needs 8).
_ALIGN = 8
# zlib's default level. At 200k points (bench/explorer.py's data): level 1 70.4 B/point in base64 in 0.4 s, level 6
# 61.2 B/point in 1.7 s, level 9 60.3 B/point in 4.6 s.
_GZIP_LEVEL = 6
_SEPARATOR = "\x00"
# Integer types tried in order, smallest first; the page maps each code to its typed array.
_INT_TYPES = ("<i1", "<u1", "<i2", "<u2", "<i4", "<u4")
_MAX_SAFE_INT = 2**53 - 1  # beyond it a JavaScript number (a double) would silently change the value


def numeric_array(values: np.ndarray, *, precise: bool = False) -> np.ndarray:
    """``values`` in the smallest little-endian type the page can read exactly.

    Integers take the smallest of int8/uint8/int16/uint16/int32/uint32 that holds them, else float64 (exact up to
    2**53); floats take float32, or float64 when ``precise``.
    """
    arr = np.asarray(values)
    if arr.dtype.kind in "iub":
        lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
        for dtype in _INT_TYPES:
            info = np.iinfo(dtype)
            if info.min <= lo and hi <= info.max:
                return np.ascontiguousarray(arr, dtype=dtype)
        if max(-lo, hi) > _MAX_SAFE_INT:
            raise ValueError(f"integer values beyond 2**53 ({lo}..{hi}) cannot reach the page exactly")
        return np.ascontiguousarray(arr, dtype="<f8")
    return np.ascontiguousarray(arr, dtype="<f8" if precise else "<f4")


def clip_text(array: pa.Array) -> pa.Array:
    """Strings longer than :data:`MAX_TEXT_CHARS` cut, with an ellipsis; NUL (the page's separator) made U+FFFD."""
    if len(array) == 0:
        return array
    if pc.any(pc.match_substring(array, _SEPARATOR)).as_py():
        array = pc.replace_substring(array, _SEPARATOR, "\ufffd")
    too_long = pc.greater(pc.utf8_length(array), MAX_TEXT_CHARS)
    if pc.any(too_long).as_py():
        cut = pc.binary_join_element_wise(pc.utf8_slice_codeunits(array, 0, MAX_TEXT_CHARS - 1), "…", "")
        array = pc.if_else(too_long, cut, array)
    return array


def text_blob(array: pa.Array | pa.ChunkedArray) -> bytes:
    """A string array as its UTF-8 values joined by NUL (null as empty), cut and cleaned by :func:`clip_text`."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if len(array) == 0:
        return b""
    joined = pc.binary_join_element_wise(clip_text(pc.fill_null(array, "")), "", _SEPARATOR).cast(pa.large_string())
    _, offsets, data = joined.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int64)[joined.offset : joined.offset + len(joined) + 1]
    return bytes(memoryview(data)[int(bounds[0]) : int(bounds[-1]) - 1])  # the last value's separator dropped


def pack_arrays(arrays: Mapping[str, np.ndarray | bytes]) -> tuple[dict, str]:
    """Pack named arrays into one gzip buffer, base64-encoded: ``(directory, base64 text)``.

    Parameters
    ----------
    arrays : mapping of str to numpy.ndarray or bytes
        Typed arrays (from :func:`numeric_array`) and text blobs (from :func:`text_blob`), in the order to pack.

    Returns
    -------
    directory : dict
        ``{name: {"dtype": "f4" | "i2" | ... | "utf8", "offset": bytes, "length": elements or bytes}}``.
    text : str
        Base64 of the gzip-compressed buffer (deterministic: no timestamp in the gzip header).
    """
    directory: dict[str, dict] = {}
    parts: list[bytes] = []
    size = 0
    for name, value in arrays.items():
        pad = -size % _ALIGN
        if pad:
            parts.append(b"\x00" * pad)
            size += pad
        if isinstance(value, bytes):
            raw, entry = value, {"dtype": "utf8", "offset": size, "length": len(value)}
        else:
            if value.dtype.byteorder == ">":
                raise ValueError(f"array {name!r} is big-endian; the page reads little-endian")
            raw = value.tobytes()
            entry = {"dtype": value.dtype.str[1:], "offset": size, "length": int(value.size)}
        directory[name] = entry
        parts.append(raw)
        size += len(raw)
    compressed = gzip.compress(b"".join(parts), compresslevel=_GZIP_LEVEL, mtime=0)
    return directory, base64.b64encode(compressed).decode("ascii")
