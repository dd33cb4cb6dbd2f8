"""Hostile files for the importers (edge cases + hypothesis) and formula injection in exports.

An import never crashes: a file that cannot be read at all is refused naming the file; otherwise bad rows are
reported and skipped and good rows land.
"""

from __future__ import annotations

import csv
import io
import tempfile
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siyu.services import brands
from siyu.services.context import Context
from siyu.services.errors import SiyuError
from siyu.services.exports import export_frame
from siyu.services.imports import ImportJobView, run_import
from siyu.services.imports.runner import preview

HEADER = "手机号,姓名,城市"
GOOD = "13800138000,张三,上海"


def _import(ctx: Context, path: Path, kind: str = "customers") -> ImportJobView | SiyuError:
    try:
        return run_import(ctx, "acme", kind, path)
    except SiyuError as err:
        return err


def _landed(ctx: Context) -> int:
    return int(ctx.warehouse.fetch("SELECT count(*) FROM identity_observations WHERE brand_id = 'acme'")[0][0])


@pytest.fixture
def acme(ctx: Context) -> Context:
    brands.create_brand(ctx, "acme", "Acme")
    return ctx


def _bytes_file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# (file name, bytes, rows that must land (None: refused as a whole), rows that must fail)
CSV_CASES: list[tuple[str, str, bytes, int | None, int]] = [
    ("empty", "e.csv", b"", None, 0),
    ("only-header", "h.csv", (HEADER + "\n").encode(), 0, 0),
    ("header-and-blank-lines", "b.csv", (HEADER + "\n\n\n").encode(), 0, 0),
    ("ragged-short", "r.csv", (HEADER + "\n" + GOOD + "\n13900139000\n999,坏\n").encode(), 2, 1),
    ("ragged-long", "l.csv", (HEADER + "\n" + GOOD + "\n13900139000,李四,北京,多余\n").encode(), None, 0),
    ("huge-field", "x.csv", (HEADER + f"\n{GOOD}\n13900139000,{'长' * 300_000},北京\n").encode(), 2, 0),
    ("nul-bytes", "n.csv", (HEADER + "\n13800138000,张\x00三,上海\n139\x0000139000,李四,北京\n").encode(), 1, 1),
    ("gbk", "g.csv", (HEADER + "\n" + GOOD + "\n13900139000,李四,北京\n").encode("gbk"), 2, 0),
    ("utf8-bom", "u.csv", ("\ufeff" + HEADER + "\n" + GOOD + "\n").encode(), 1, 0),
    (
        "mixed-newlines",
        "m.csv",
        (HEADER + "\r\n" + GOOD + "\n13900139000,李四,北京\r\n13700137000,王五,杭州\n").encode(),
        3,
        0,
    ),
    ("quote-unbalanced", "q.csv", (HEADER + '\n"13800138000,张三,上海\n').encode(), None, 0),
    ("binary-garbage", "z.csv", bytes(range(256)) * 40, None, 0),
    ("formula-cells", "f.csv", (HEADER + '\n13800138000,=HYPERLINK("http://x"),@SUM(A1)\n').encode(), 1, 0),
]


@pytest.mark.parametrize(("name", "data", "ok", "failed"), [c[1:] for c in CSV_CASES], ids=[c[0] for c in CSV_CASES])
def test_csv_edge_cases(acme: Context, tmp_path: Path, name: str, data: bytes, ok: int | None, failed: int) -> None:
    result = _import(acme, _bytes_file(tmp_path, name, data))
    if ok is None:  # unreadable as a whole: refused naming the file (or a failed job with a message)
        if isinstance(result, SiyuError):
            assert result.field == "file" and name in result.message
        else:
            assert result.status in ("failed", "done") and result.rows_ok == 0 and result.message
        assert _landed(acme) == 0
        return
    assert isinstance(result, ImportJobView), result
    assert result.status == "done", result.message
    assert (result.rows_ok, result.rows_failed) == (ok, failed), result
    assert _landed(acme) == ok
    if failed:
        assert result.error_report and Path(result.error_report).read_text(encoding="utf-8-sig").count("\n") > failed


def test_xlsx_formulas_merged_cells_and_dates(acme: Context, tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["客户名单 (导出)"])  # a title row above the header, merged across the columns
    ws.merge_cells("A1:D1")
    ws.append(["手机号", "姓名", "城市", "生日"])
    ws.append(["13800138000", '=CONCAT("张","三")', "上海", date(1990, 5, 1)])
    ws.append(["13900139000", "李四", "北京", datetime(1991, 6, 2, 8, 30)])
    ws.append(["=1+1", "公式手机", "杭州", "not a date"])  # a formula where a phone should be → a bad row
    ws.append(["13700137000", "王五", None, None])
    ws.merge_cells("C5:C6")
    path = tmp_path / "list.xlsx"
    wb.save(path)
    job = run_import(acme, "acme", "customers", path)
    assert job.status == "done", job.message
    assert (job.rows_total, job.rows_ok, job.rows_failed) == (4, 3, 1)
    assert _landed(acme) == 3


def test_xlsx_that_is_not_a_workbook_is_refused(acme: Context, tmp_path: Path) -> None:
    path = _bytes_file(tmp_path, "fake.xlsx", b"PK\x03\x04 not really a zip")
    result = _import(acme, path)
    assert isinstance(result, SiyuError) and result.field == "file" and "fake.xlsx" in result.message


def test_preview_of_hostile_files_never_crashes(tmp_path: Path) -> None:
    for name, fname, data, _ok, _failed in CSV_CASES:
        try:
            got = preview(_bytes_file(tmp_path, fname, data), "customers")
        except SiyuError as err:
            assert err.field == "file", name
        else:
            assert isinstance(got, dict), name


# ---- hypothesis: random customer files, every row accounted for -------------------------------------------------
phones = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
junk_phones = st.text(alphabet=st.characters(categories=["L", "P", "Zs"]), min_size=1, max_size=12).filter(
    lambda s: s.strip() and not s.strip().startswith(("=", "+", "-", "@"))
)
names = st.text(max_size=30).map(lambda s: s.replace("\r", " "))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    rows=st.lists(st.tuples(st.one_of(phones, junk_phones), names), min_size=1, max_size=15),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_random_customer_files(rows: list[tuple[str, str]], encoding: str, newline: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        from siyu.config import Settings

        ctx = Context.open(Settings(data_dir=Path(tmp) / "data"))
        try:
            brands.create_brand(ctx, "acme", "Acme")
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator=newline)
            writer.writerow(["手机号", "姓名", "会员号"])
            for i, (phone, name) in enumerate(rows):
                writer.writerow([phone, name, f"M{i}"])
            path = Path(tmp) / "c.csv"
            path.write_bytes(buf.getvalue().encode(encoding))
            job = run_import(ctx, "acme", "customers", path)
            assert job.status == "done", job.message
            good = sum(1 for p, _ in rows if p[:1] == "1" and p.isdigit())
            assert job.rows_total == len(rows)
            assert job.rows_ok == good and job.rows_failed == len(rows) - good
            assert _landed(ctx) == good
        finally:
            ctx.close()


# ---- formula injection in exports --------------------------------------------------------------------------------
DANGEROUS = ["=1+1", "+1", "-1+2", "@SUM(A1)", "\t=1", "\r=1", '=HYPERLINK("http://evil","x")']


def test_exports_neutralise_formulas_in_csv_and_xlsx() -> None:
    frame = pd.DataFrame({"name": [*DANGEROUS, "张三", "a=b"], "n": list(range(len(DANGEROUS) + 2))})
    data, _ = export_frame(frame, "csv")
    cells = [r[0] for r in csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))][1:]
    assert cells[: len(DANGEROUS)] == ["'" + v for v in DANGEROUS]
    assert cells[-2:] == ["张三", "a=b"]  # harmless text untouched
    data, _ = export_frame(frame, "xlsx")
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    assert ws is not None
    got = [ws.cell(row=i + 2, column=1).value for i in range(len(DANGEROUS) + 2)]
    assert got[: len(DANGEROUS)] == ["'" + v.replace("\r", "\n") for v in DANGEROUS]  # XML reads CR as LF
    assert all(ws.cell(row=i + 2, column=1).data_type == "s" for i in range(len(DANGEROUS)))  # text, not formula
    assert [ws.cell(row=i + 2, column=2).value for i in range(2)] == [0, 1]  # numbers stay numbers


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=20), min_size=1, max_size=10))
def test_no_exported_text_cell_starts_a_formula(values: list[str]) -> None:
    data, _ = export_frame(pd.DataFrame({"v": values}), "csv")
    for (cell,) in list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))[1:]:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
