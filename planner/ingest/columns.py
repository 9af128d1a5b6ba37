"""Column conversions used by batch normalisation (pure, vectorised, no row loops).

Strings become compact categoricals (numbers as strings, blanks as missing), numbers and
times become float arrays, each with a mask of values that were present but unreadable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from planner.ingest.mapping import SECONDS_PER_UNIT

EPOCH = pd.Timestamp(0, tz="UTC")


def to_categorical(
    values: pd.Series | None, n: int, *, default: str | None = None, lower: bool = False
) -> pd.Categorical:
    """Compact string column: numbers become strings, blanks become missing (or default)."""
    if values is None:
        if default is None:
            return pd.Categorical.from_codes(
                np.full(n, -1, dtype=np.int8), categories=category_names([])
            )
        return pd.Categorical.from_codes(
            np.zeros(n, dtype=np.int8), categories=category_names([default])
        )
    cat = values.array if isinstance(values.dtype, pd.CategoricalDtype) else pd.Categorical(values)
    if not lower and _clean_strings(cat, default):
        return cat  # already compact, stripped and without blanks: nothing to remap
    categories = pd.Index(cat.categories)
    if pd.api.types.is_float_dtype(categories.dtype) and (categories == categories.round()).all():
        categories = categories.astype("int64")  # integer ids read as floats next to blanks
    names = categories.astype(str).str.strip()
    if lower:
        names = names.str.lower()
    # Vectorised over categories, not rows: merge duplicates that stripping created, drop
    # blanks, then push the remapping through the row codes.
    remap, unique = pd.factorize(names)
    keep = np.asarray(unique != "")
    renumber = np.where(keep, np.cumsum(keep) - 1, -1)
    remap = renumber[remap] if len(remap) else remap.astype(np.int64)
    unique = unique[keep]
    fill = -1
    if default is not None:
        if default not in unique:
            unique = unique.append(pd.Index([default]))
        fill = int(unique.get_loc(default))
    remap = np.append(np.where(remap < 0, fill, remap), fill).astype(np.int64)
    codes = remap[np.asarray(cat.codes, dtype=np.int64)]  # code -1 reads the last entry
    return pd.Categorical.from_codes(codes, categories=category_names(unique), validate=False)


def _clean_strings(cat: pd.Categorical, default: str | None) -> bool:
    """True when the categories are strings needing no stripping, with no blank, and no
    missing row needs the default (checked in Arrow, without Python string objects)."""
    if cat.categories.dtype != "str":
        return False
    labels = pa.array(cat.categories)
    if not pa.types.is_string(labels.type) and not pa.types.is_large_string(labels.type):
        return False
    trimmed = pc.utf8_trim_whitespace(labels)
    if not pc.all(pc.equal(trimmed, labels)).as_py() or pc.any(pc.equal(labels, "")).as_py():
        return False
    return default is None or not bool((np.asarray(cat.codes) < 0).any())


def category_names(values: pd.Index | list[str]) -> pd.Index:
    """Category labels as one string dtype, so batches and files concatenate."""
    if isinstance(values, pd.Index):
        return values if values.dtype == "str" else values.astype("str")
    return pd.Index(values, dtype="str")


def only_where(cat: pd.Categorical, keep: np.ndarray) -> pd.Categorical:
    codes = np.where(keep, np.asarray(cat.codes), -1)
    return pd.Categorical.from_codes(codes, dtype=cat.dtype, validate=False)


def missing_mask(cat: pd.Categorical) -> np.ndarray:
    return np.asarray(cat.isna())


def to_numbers(values: pd.Series | None, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan)
    if pd.api.types.is_bool_dtype(values.dtype):
        return np.full(n, np.nan)
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.to_numpy(dtype="float64", na_value=np.nan)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def unparsed_mask(values: pd.Series | None, parsed: np.ndarray) -> np.ndarray:
    """Rows that hold something (not blank) that did not parse."""
    if values is None:
        return np.zeros(len(parsed), dtype=bool)
    present = values.notna().to_numpy(dtype=bool, copy=True)
    if not pd.api.types.is_numeric_dtype(values.dtype):
        present &= values.astype(str).str.strip().ne("").to_numpy(dtype=bool)
    return np.asarray(present & np.isnan(parsed), dtype=bool)


# No request carries more tokens: the longest context windows served today are 10M
# tokens (Llama 4 Scout). A larger count is a broken row (a byte count, an overflowed
# counter, 1e12), and at 2^63 it would no longer fit the int64 column.
MAX_TOKENS_PER_REQUEST = 10_000_000


def to_tokens(
    values: pd.Series | None, is_llm: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token counts as int64, a mask of unreadable values and a mask of absurd ones."""
    numbers = to_numbers(values, len(is_llm))
    bad = is_llm & (~np.isfinite(numbers) | (numbers < 0) | (np.floor(numbers) != numbers))
    huge = is_llm & ~bad & (numbers > MAX_TOKENS_PER_REQUEST)
    keep = ~(bad | huge | ~is_llm)
    return np.where(keep, np.nan_to_num(numbers), 0).astype("int64"), bad, huge


def to_seconds(
    values: pd.Series | None, unit: str, fmt: str | None, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seconds (float) and a mask of present-but-unreadable values."""
    if values is None:
        return np.full(n, np.nan), np.zeros(n, dtype=bool)
    if (
        fmt is None
        and pd.api.types.is_numeric_dtype(values.dtype)
        and not pd.api.types.is_bool_dtype(values.dtype)
    ):
        return values.to_numpy(dtype="float64", na_value=np.nan) * SECONDS_PER_UNIT[unit], np.zeros(
            n, dtype=bool
        )
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        stamps = pd.Series(values)
        if stamps.dt.tz is None:
            stamps = stamps.dt.tz_localize("UTC")
        seconds = ((stamps - EPOCH) / pd.Timedelta(1, "s")).to_numpy(
            dtype="float64", na_value=np.nan
        )
        return seconds, np.zeros(n, dtype=bool)
    if fmt is None:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        if not np.isnan(numbers).all() or values.isna().all():
            return numbers * SECONDS_PER_UNIT[unit], unparsed_mask(values, numbers)
    iso = fmt is None or fmt.lower() == "iso8601"
    stamps = pd.to_datetime(values, format="ISO8601" if iso else fmt, utc=True, errors="coerce")
    seconds = ((stamps - EPOCH) / pd.Timedelta(1, "s")).to_numpy(
        dtype="float64", na_value=np.nan, copy=True
    )
    failed = unparsed_mask(values, seconds)
    if iso and failed.any():
        seconds[failed] = _iso_variants(pd.Series(values).iloc[np.flatnonzero(failed)])
        failed = unparsed_mask(values, seconds)
    return seconds, failed


# ISO 8601 forms pandas' ISO parser rejects: a decimal comma ("10:00:00,5"), a zone
# written as a name ("... UTC", "... GMT") and an RFC 9557 zone suffix after the offset
# ("+02:00[Europe/Paris]").
_DECIMAL_COMMA = r"(\d{2}:\d{2}:\d{2}),(\d+)"
_ZONE_SUFFIX = r"(?<=[+-]\d{2}:\d{2})\[[^\]]+\]$|(?<=Z)\[[^\]]+\]$"
_UTC_NAME = r"\s*(?:UTC|GMT|Z)$"


def _iso_variants(values: pd.Series) -> np.ndarray:
    """Seconds of the ISO 8601 variants above (NaN where still unreadable)."""
    text = values.astype(str).str.strip()
    text = text.str.replace(_DECIMAL_COMMA, r"\1.\2", regex=True)
    text = text.str.replace(_ZONE_SUFFIX, "", regex=True)
    text = text.str.replace(_UTC_NAME, "+00:00", regex=True)
    stamps = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    return ((stamps - EPOCH) / pd.Timedelta(1, "s")).to_numpy(dtype="float64", na_value=np.nan)


def to_hash_lists(values: pd.Series | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-row block hashes as int64 arrays (None where absent) and a mask of unreadable rows.

    A row holds a list of integers (JSON, Parquet list column), or a string of integers
    separated by spaces, commas or semicolons (CSV: "17 18 42"; brackets are ignored).
    String hashes (hex digests) are read as integers in their base when they parse as
    hex; anything else is unreadable. Values outside int64 are folded into it (the
    low 63 bits), as only equality of hashes matters.
    """
    out = np.full(n, None, dtype=object)
    bad = np.zeros(n, dtype=bool)
    if values is None:
        return out, bad
    for i, value in enumerate(values.to_numpy(dtype=object)):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        parsed = _hash_list(value)
        if parsed is None:
            bad[i] = True
        elif len(parsed):
            out[i] = parsed
    return out, bad


_MASK_63 = (1 << 63) - 1


def _hash_list(value: object) -> np.ndarray | None:
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.integer):
        return value.astype(np.int64)  # a Parquet list<int64> cell: no per-item work
    if isinstance(value, list) and all(type(v) is int for v in value):
        try:
            return np.asarray(value, dtype=np.int64)  # a JSON list of ids
        except OverflowError:
            pass
    if isinstance(value, str):
        text = value.strip().strip("[]")
        items: list[object] = [t for t in text.replace(",", " ").replace(";", " ").split() if t]
    elif isinstance(value, list | tuple | np.ndarray):
        items = list(value)
    else:
        return None
    hashes = np.empty(len(items), dtype=np.int64)
    for k, item in enumerate(items):
        number = _hash_int(item)
        if number is None:
            return None
        hashes[k] = number
    return hashes


def _hash_int(item: object) -> int | None:
    if isinstance(item, bool):
        return None
    if isinstance(item, int | np.integer):
        return int(item) & _MASK_63 if not 0 <= int(item) <= _MASK_63 else int(item)
    if isinstance(item, float) and item.is_integer():
        return int(item) & _MASK_63
    if isinstance(item, str):
        for base in (10, 16):
            try:
                return int(item, base) & _MASK_63
            except ValueError:
                continue
    return None
