"""Vectorised string and timestamp helpers for the demo generator (pyarrow compute, no per-row Python)."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def join(*parts: pa.Array | str) -> pa.Array:
    """Concatenate string arrays and constants element-wise."""
    return pc.binary_join_element_wise(*parts, "")


def dec(values: npt.NDArray[np.integer], width: int = 0) -> pa.Array:
    """Decimal text of integers, left-padded with zeros to ``width``."""
    text = pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())
    return pc.utf8_lpad(text, width=width, padding="0") if width else text


def scramble(values: npt.NDArray[np.integer], salt: int) -> npt.NDArray[np.uint64]:
    """A bijective 64-bit mix (splitmix64 finaliser) of ``values + salt``: unique, random-looking ids."""
    with np.errstate(over="ignore"):
        z = np.asarray(values, dtype=np.uint64) + np.uint64(salt) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def hexid(values: npt.NDArray[np.uint64], width: int = 16) -> pa.Array:
    """Lower-case hex text of the low ``width`` (≤ 16) nibbles of each value."""
    if not 1 <= width <= 16:
        raise ValueError("hexid width must be 1..16")
    v = np.asarray(values, dtype=np.uint64)
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64) * np.uint64(4)
    nibbles = ((v[:, None] >> shifts[None, :]) & np.uint64(15)).astype(np.intp)
    raw = np.ascontiguousarray(_HEX[nibbles]).view(f"S{width}").ravel()
    return pc.cast(pa.array(raw, type=pa.binary(width)), pa.string())


def opaque(values: npt.NDArray[np.integer], salt: int, prefix: str, width: int = 16) -> pa.Array:
    """Unique opaque ids like WeChat/WeCom ids: ``prefix`` + hex of a scrambled index (unique in 16 digits)."""
    head = hexid(scramble(values, salt), min(width, 16))
    if width <= 16:
        return join(prefix, head)
    return join(prefix, head, hexid(scramble(values, salt + 7919), width - 16))


def nullify(values: pa.Array, keep: BoolArray) -> pa.Array:
    """Null where ``keep`` is false."""
    return pc.if_else(pa.array(keep), values, pa.nulls(len(values), values.type))


def take(values: pa.Array, index: npt.NDArray[np.integer]) -> pa.Array:
    return values.take(pa.array(np.asarray(index, dtype=np.int64)))


def pick(options: tuple[str, ...] | list[str], index: npt.NDArray[np.integer]) -> pa.Array:
    """Strings from a small list, by position."""
    return take(pa.array(list(options), pa.string()), index)


def timestamps(origin: datetime, seconds: npt.NDArray[np.integer]) -> pa.Array:
    """Timestamps ``origin + seconds`` (naive UTC) as an Arrow timestamp[us] array."""
    base = int((origin - datetime(1970, 1, 1)).total_seconds())
    return pa.array((np.asarray(seconds, dtype=np.int64) + base) * 1_000_000, type=pa.timestamp("us"))


def daytime_seconds(rng: np.random.Generator, n: int) -> IntArray:
    """Seconds into a day, weighted towards shopping hours (10:00–23:00)."""
    weights = np.array([1, 0.5, 0.3, 0.2, 0.2, 0.3, 1, 2, 3, 4, 6, 7, 8, 7, 6, 6, 6, 6, 7, 9, 11, 12, 10, 5])
    hour = rng.choice(24, size=n, p=weights / weights.sum())
    return (hour * 3600 + rng.integers(0, 3600, size=n)).astype(np.int64)
