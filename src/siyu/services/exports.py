"""Export a table of results as CSV (UTF-8 with BOM, opens in Excel), XLSX or Parquet.

Text cells starting with = + - @ (or a tab / carriage return) are prefixed with a quote in CSV and XLSX, so a
spreadsheet never runs them as formulas (CSV injection).
"""

from __future__ import annotations

import hashlib
import io
from typing import Literal

import pandas as pd

from siyu.services.errors import SiyuError

Format = Literal["csv", "xlsx", "parquet"]
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "parquet": "application/vnd.apache.parquet",
}
_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def _defuse(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or str(out[col].dtype).startswith("str"):
            out[col] = out[col].map(lambda v: "'" + v if isinstance(v, str) and v.startswith(_DANGEROUS) else v)
    return out


PII_COLUMNS = ("phone", "email")


def hash_pii(frame: pd.DataFrame, columns: tuple[str, ...] = PII_COLUMNS) -> pd.DataFrame:
    """``frame`` with its phone / email cells replaced by the SHA-256 hex of the value (still joinable with
    another system's hashed list, unreadable to whoever finds the file); empty cells stay empty."""
    out = frame.copy()
    for col in columns:
        if col in out.columns:
            out[col] = out[col].map(
                lambda v: hashlib.sha256(str(v).strip().lower().encode()).hexdigest() if isinstance(v, str) and v else v
            )
    return out


def export_frame(frame: pd.DataFrame, fmt: str) -> tuple[bytes, str]:
    """The file bytes and media type of ``frame`` in ``fmt`` (csv, xlsx or parquet)."""
    if fmt not in MEDIA_TYPES:
        raise SiyuError(f"format {fmt!r} is not supported; use csv, xlsx or parquet", "format")
    if fmt == "parquet":
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        return buf.getvalue(), MEDIA_TYPES[fmt]
    safe = _defuse(frame)
    if fmt == "csv":
        # CRLF rows (RFC 4180): pandas quotes a cell holding a lone CR only when CR is in the line terminator; an
        # unquoted CR would start a new row in a spreadsheet, where "=..." after it would run as a formula.
        return safe.to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig"), MEDIA_TYPES[fmt]
    buf = io.BytesIO()
    with pd.ExcelWriter(buf, engine="openpyxl") as xw:
        safe.to_excel(xw, index=False)
    return buf.getvalue(), MEDIA_TYPES[fmt]
