"""A post's text, date and account, read tolerantly from the passthrough columns; the per-row cluster index.

Everything that analyses posts per cluster (keywords, timelines, accounts, repost groups) starts here: dates of any
common shape become one ``datetime64[s]`` array (UTC; unparseable values counted, never raised), accounts become
integer codes, and :func:`cluster_index` maps per-row labels (-1 = noise) of any clustering or hierarchy level to
dense cluster positions. Pure compute: Arrow or numpy in, numpy and dataclasses out.
"""

from __future__ import annotations

import dataclasses
import re
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from clustering.config import ConfigError
from clustering.schema import ACCOUNT_COLUMN_NAMES, DATE_COLUMN_NAMES, TEXT_COLUMN_NAMES, PostColumns

__all__ = ["Accounts", "ParsedDates", "Posts", "cluster_index", "parse_accounts", "parse_dates", "read_posts"]

# Dates outside this range are placeholders or misread units (epoch 0, a year-2200 "never"), not post dates: they are
# counted as unparseable so one of them cannot stretch every timeline to decades.
EARLIEST = np.datetime64("1990-01-01T00:00:00", "s")
LATEST = np.datetime64("2100-01-01T00:00:00", "s")
# Epoch numbers are read by magnitude, value by value: seconds until the year 5138, then milliseconds, microseconds
# and nanoseconds (a column may mix them when sources were merged).
_EPOCH_UNITS = ((1e11, 1.0), (1e14, 1e3), (1e17, 1e6), (np.inf, 1e9))
_NUMBER = re.compile(r"^[+-]?\d+(\.\d*)?$")
# Twitter/X API v1 "created_at": the one common non-ISO shape, parsed vectorised before the per-value fallback.
_TWITTER_FORMAT = "%a %b %d %H:%M:%S %z %Y"
NAT = np.datetime64("NaT", "s")


@dataclasses.dataclass(frozen=True)
class ParsedDates:
    """Post dates as UTC instants.

    Attributes
    ----------
    values : numpy.ndarray
        ``datetime64[s]`` per row, UTC (naive values are taken as UTC); NaT where missing or unparseable.
    n_missing : int
        Rows with no value (null or blank).
    n_unparseable : int
        Rows with a value that is not a date, or a date outside 1990-2100.
    """

    values: np.ndarray
    n_missing: int
    n_unparseable: int

    @property
    def n_dated(self) -> int:
        return len(self.values) - self.n_missing - self.n_unparseable


@dataclasses.dataclass(frozen=True)
class Accounts:
    """Accounts as integer codes: ``names[codes[i]]`` posted row ``i``; code -1 where the row has no account.

    Codes follow first appearance in row order, so ties between accounts break towards the one seen first.
    """

    codes: np.ndarray
    names: np.ndarray

    def name_of(self, code: int) -> str | None:
        return str(self.names[code]) if code >= 0 else None


@dataclasses.dataclass(frozen=True)
class Posts:
    """The post columns of ``n_rows`` rows; each part is None when the data has no such column.

    Attributes
    ----------
    n_rows : int
        Rows described.
    columns : clustering.schema.PostColumns
        The column each part came from.
    texts : numpy.ndarray or None
        Object array of str, None where a row has no text.
    dates : ParsedDates or None
    accounts : Accounts or None
    """

    n_rows: int
    columns: PostColumns
    texts: np.ndarray | None = None
    dates: ParsedDates | None = None
    accounts: Accounts | None = None

    def notes(self) -> list[str]:
        """One plain line per missing column or unusable value: what the report says was not available."""
        notes = []
        if self.texts is None:
            notes.append(_missing("text", TEXT_COLUMN_NAMES, "--text-column", "no keywords and no keyword names"))
        if self.dates is None:
            notes.append(_missing("date", DATE_COLUMN_NAMES, "--date-column", "no timelines"))
        elif self.dates.n_unparseable or self.dates.n_missing:
            notes.append(
                f"column {self.columns.date!r}: {self.dates.n_unparseable} unparseable date(s) (or outside 1990-2100)"
                f" and {self.dates.n_missing} missing of {self.n_rows}; those rows are left out of the timelines"
            )
        if self.accounts is None:
            notes.append(_missing("account", ACCOUNT_COLUMN_NAMES, "--account-column", "no account statistics"))
        return notes


def _missing(kind: str, names: tuple[str, ...], flag: str, consequence: str) -> str:
    return f"no {kind} column (looked for {', '.join(names[:4])}, ...; name one with {flag}): {consequence}"


def cluster_index(labels) -> tuple[np.ndarray, np.ndarray]:
    """Dense positions for the clusters of per-row ``labels``.

    Parameters
    ----------
    labels : array-like of int
        One label per row, -1 (or any negative) for noise.

    Returns
    -------
    ids : numpy.ndarray
        int64, the distinct non-negative labels in ascending order.
    position : numpy.ndarray
        int64 per row: ``ids[position[i]] == labels[i]``, -1 for noise.
    """
    labels = np.asarray(labels, dtype=np.int64).ravel()
    ids, inverse = np.unique(labels, return_inverse=True)
    first = int(np.searchsorted(ids, 0))
    return ids[first:], np.where(labels >= 0, inverse - first, -1)


def _as_arrow(values) -> pa.ChunkedArray | pa.Array:
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python types: keep every value as text
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def parse_dates(values) -> ParsedDates:
    """Parse post dates of any common shape; never raises on bad values.

    Parameters
    ----------
    values : pyarrow.Array, pyarrow.ChunkedArray or sequence
        Arrow timestamps (naive or tz-aware) or dates; integers or floats of epoch seconds, milliseconds,
        microseconds or nanoseconds (told apart by magnitude, value by value); or strings: ISO 8601 with or without
        offset, Twitter's ``Tue Sep 10 08:00:00 +0000 2024``, epoch numbers, or anything pandas/dateutil reads.

    Returns
    -------
    ParsedDates
        Values in UTC, NaT where missing or unparseable, with both counts.
    """
    array = _as_arrow(values)
    type_ = array.type
    if pa.types.is_timestamp(type_) or pa.types.is_date(type_):
        raw = array.cast(pa.timestamp("s")) if pa.types.is_date(type_) else array
        # Arrow keeps tz-aware timestamps as UTC instants; numpy receives exactly those.
        parsed = np.asarray(raw.to_numpy(zero_copy_only=False), dtype="datetime64[s]")
        present = ~np.asarray(pc.is_null(array).to_numpy(zero_copy_only=False), dtype=bool)
    elif pa.types.is_integer(type_) or pa.types.is_floating(type_):
        # Unsafe cast: nanosecond integers exceed float64's exact range, but only whole seconds are kept.
        numbers = np.asarray(array.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False), dtype=np.float64)
        present = np.isfinite(numbers)
        parsed = _from_epoch(numbers)
    elif pa.types.is_string(type_) or pa.types.is_large_string(type_):
        parsed, present = _from_strings(array)
    else:  # booleans, binaries, lists: values that are present but cannot be dates
        present = ~np.asarray(pc.is_null(array).to_numpy(zero_copy_only=False), dtype=bool)
        parsed = np.full(len(array), NAT)
    in_range = (parsed >= EARLIEST) & (parsed < LATEST)  # NaT compares False
    parsed = np.where(in_range, parsed, NAT)
    n_missing = int((~present).sum())
    return ParsedDates(values=parsed, n_missing=n_missing, n_unparseable=int(present.sum() - in_range.sum()))


def _from_epoch(numbers: np.ndarray) -> np.ndarray:
    """Epoch numbers of mixed units to datetime64[s]; NaN stays NaT."""
    magnitude = np.abs(numbers)
    divisor = np.ones_like(numbers)
    for bound, unit in reversed(_EPOCH_UNITS):
        divisor = np.where(magnitude < bound, unit, divisor)
    seconds = numbers / divisor
    ok = np.isfinite(seconds) & (np.abs(seconds) < 1e12)  # beyond numpy's datetime64[s] comfort: not a post date
    out = np.full(len(numbers), NAT)
    out[ok] = np.floor(seconds[ok]).astype(np.int64).astype("datetime64[s]")
    return out


def _from_strings(array) -> tuple[np.ndarray, np.ndarray]:
    text = pc.utf8_trim_whitespace(array)
    strings = pd.Series(text.to_numpy(zero_copy_only=False), dtype=object)
    present = strings.notna() & (strings != "")
    out = np.full(len(strings), NAT)
    numeric = present & strings.str.match(_NUMBER).fillna(False).astype(bool)
    if numeric.any():
        out[numeric.to_numpy()] = _from_epoch(strings[numeric].astype(np.float64).to_numpy())
    todo = present & ~numeric
    # Vectorised passes first (ISO 8601, then Twitter's format); dateutil, value by value, only for what is left.
    for fmt in ("ISO8601", _TWITTER_FORMAT, "mixed"):
        if not todo.any():
            break
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas warns on ambiguous formats; the value is still parsed or NaT
            parsed = pd.to_datetime(strings[todo], format=fmt, utc=True, errors="coerce")
        values = _utc_seconds(parsed)
        hit = ~np.isnat(values)
        index = np.flatnonzero(todo.to_numpy())
        out[index[hit]] = values[hit]
        todo.iloc[index[hit]] = False
    return out, present.to_numpy()


def _utc_seconds(parsed: pd.Series) -> np.ndarray:
    """A tz-aware (UTC) pandas series as naive datetime64[s] UTC values."""
    naive = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return naive.to_numpy(dtype="datetime64[s]", na_value=NAT)


def parse_accounts(values) -> Accounts:
    """Accounts from any column of scalars: values become text (numeric user ids too); null and blank mean none.

    Whole-number floats read as integers: pandas stores integer user ids with a missing value as float64, and
    ``1234.0`` is the account ``1234``.
    """
    text = pc.utf8_trim_whitespace(_as_text(_whole_floats_as_integers(_as_arrow(values))))
    text = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
    encoded = pc.dictionary_encode(text)
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    names = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    return Accounts(codes=codes, names=names)


def _whole_floats_as_integers(array):
    if not pa.types.is_floating(array.type):
        return array
    array = pc.if_else(pc.is_finite(array), array, pa.scalar(None, array.type))  # NaN is pandas' missing value
    numbers = np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.float64)
    finite = numbers[np.isfinite(numbers)]
    if finite.size and np.array_equal(finite, np.round(finite)) and np.abs(finite).max() < 2**53:
        return array.cast(pa.int64(), safe=False)
    return array


def _as_text(values) -> pa.Array:
    """A string array; raises ``TypeError`` for values that have no text form (lists, structs)."""
    array = _as_arrow(values)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_string(array.type):
        return array
    try:
        return array.cast(pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        raise TypeError(f"{array.type} values have no text form") from None


def _texts(column) -> np.ndarray:
    return np.asarray(_as_text(column).to_numpy(zero_copy_only=False), dtype=object)


def _column(table: pa.Table, name: str, flag: str, parse):
    try:
        return parse(table[name])
    except TypeError as exc:
        raise ConfigError(f"{flag}: column {name!r} cannot be read as post data ({exc})") from None


def read_posts(table: pa.Table, columns: PostColumns) -> Posts:
    """The text, date and account of every row of ``table``, from the columns ``columns`` names.

    Parameters
    ----------
    table : pyarrow.Table
        Rows in the order the per-row labels use (e.g. the ``ok`` rows of the shards).
    columns : clustering.schema.PostColumns
        From :func:`clustering.schema.detect_post_columns` (which applies the ``--*-column`` flags).

    Returns
    -------
    Posts
        Raises ``ConfigError`` naming the flag when the text or account column holds lists or structs.
    """
    return Posts(
        n_rows=table.num_rows,
        columns=columns,
        texts=_column(table, columns.text, "--text-column", _texts) if columns.text else None,
        dates=parse_dates(table[columns.date]) if columns.date else None,
        accounts=_column(table, columns.account, "--account-column", parse_accounts) if columns.account else None,
    )
