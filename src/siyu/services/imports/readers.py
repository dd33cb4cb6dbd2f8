"""Read import files (CSV in utf-8 / utf-8-sig / gbk, XLSX, Parquet) into string-valued DataFrames."""

from __future__ import annotations

import csv
import gzip
import hashlib
import itertools
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from siyu.services.errors import SiyuError

CSV_ENCODINGS = ("utf-8-sig", "gb18030")  # utf-8-sig also reads plain utf-8; gb18030 is a superset of gbk
HEADER_SCAN_ROWS = 10
MAX_FIELD = 16 * 1024 * 1024  # a cell may be long (notes, addresses pasted whole); the csv module's 128 KB is not
csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD))
FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx", ".parquet": "parquet"}


def file_format(path: Path) -> str:
    """csv, xlsx or parquet, from the file name (``.csv.gz`` is csv)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in {".gz", ".bz2", ".zip", ".xz"}:
        suffixes = suffixes[:-1]
    fmt = FORMATS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise SiyuError(f"{path.name}: unsupported file type; give a .csv, .xlsx or .parquet file", field="file")
    return fmt


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _clean(frame: pd.DataFrame) -> pd.DataFrame:
    """Strip headers and cells; empty cells become None; every cell is a str or None."""
    headers = [str(c).strip() for c in frame.columns]
    data = {h: pd.Series([_cell(v) for v in frame.iloc[:, i]], dtype=object) for i, h in enumerate(headers)}
    return pd.DataFrame(data, columns=headers, dtype=object)


def _cell(value: object) -> str | None:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat(sep=" ")
    if isinstance(value, float):
        if value != value:  # NaN
            return None
        if value.is_integer():
            return str(int(value))
    text = str(value).strip()
    return text or None


def header_index(rows: list[list[object]]) -> int:
    """Which of the first rows holds the headers: the first nearly as full as the fullest (skips title rows)."""
    counts = [sum(1 for v in row if _cell(v) is not None) for row in rows]
    if not counts:
        return 0
    most = max(counts)
    need = most if most < 3 else min(most - 1, -(-4 * most // 5))  # a header may leave a column unnamed
    return next(i for i, c in enumerate(counts) if c >= need)


def _open_text(path: Path, encoding: str) -> Any:
    opener: Any = gzip.open if path.suffix.lower() == ".gz" else open
    return opener(path, "rt", encoding=encoding, newline="")


def _delimiter(path: Path, encoding: str) -> str:
    """Comma unless tabs, semicolons or pipes clearly separate the first lines' cells."""
    with _open_text(path, encoding) as fh:
        lines = list(itertools.islice(fh, HEADER_SCAN_ROWS))
    lines = [line for line in lines if line.strip()]

    def score(d: str) -> tuple[int, int, bool]:
        counts = Counter(line.count(d) for line in lines if line.count(d))
        if not counts:
            return (0, 0, d == ",")
        count, lines_with_it = counts.most_common(1)[0]
        return (lines_with_it, count, d == ",")  # the same number of cells on most lines wins

    return max(",\t;|", key=score)


def _csv_head(path: Path, encoding: str, sep: str) -> list[list[object]]:
    with _open_text(path, encoding) as fh:
        return [list(r) for r in itertools.islice(csv.reader(fh, delimiter=sep), HEADER_SCAN_ROWS)]


def read_table(path: Path, nrows: int | None = None) -> pd.DataFrame:
    """Read a whole file (or its first ``nrows`` rows) as strings; raise SiyuError when it cannot be read.

    Title rows above the header row (common in exported spreadsheets) are skipped; ``frame.attrs["first_row"]``
    is the file row number of the first data row (as a spreadsheet numbers it; 1 for Parquet).
    """
    path = Path(path)
    if not path.is_file():
        raise SiyuError(f"file {str(path)!r} does not exist", field="file")
    fmt = file_format(path)
    first_row = 1
    try:
        if fmt == "csv":
            last: Exception | None = None
            for enc in CSV_ENCODINGS:
                try:
                    sep = _delimiter(path, enc)
                    skip = header_index(_csv_head(path, enc, sep))
                    frame = pd.read_csv(
                        path,
                        dtype=str,
                        keep_default_na=False,
                        encoding=enc,
                        sep=sep,
                        nrows=nrows,
                        na_values=[],
                        skiprows=skip,
                        index_col=False,  # a row with an extra cell must not shift the columns into an index
                    )
                    first_row = skip + 2
                    break
                except UnicodeDecodeError as exc:
                    last = exc
            else:
                raise SiyuError(
                    f"{path.name}: cannot decode the text ({last}); save it as UTF-8 or GBK CSV", field="file"
                )
        elif fmt == "xlsx":
            head = pd.read_excel(path, dtype=str, nrows=HEADER_SCAN_ROWS, header=None, engine="openpyxl")
            skip = header_index(head.values.tolist())
            frame = pd.read_excel(path, dtype=str, nrows=nrows, engine="openpyxl", header=skip)
            first_row = skip + 2
        else:
            frame = pd.read_parquet(path)
            if nrows is not None:
                frame = frame.head(nrows)
    except SiyuError:
        raise
    except pd.errors.ParserError as exc:
        hint = "; a line has more cells than the header: fix or remove it" if "Expected" in str(exc) else ""
        raise SiyuError(f"{path.name}: cannot read the {fmt} file ({exc}){hint}", field="file") from exc
    except (ValueError, OSError, csv.Error, zipfile.BadZipFile, KeyError) as exc:  # KeyError: a zip that is no xlsx
        raise SiyuError(f"{path.name}: cannot read the {fmt} file ({exc})", field="file") from exc
    out = _clean(frame)
    out.attrs["first_row"] = first_row
    return out
