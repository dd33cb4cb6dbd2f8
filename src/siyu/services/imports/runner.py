"""Import jobs: create, run (with progress and a row-level error report), look up, and queue on Huey."""

from __future__ import annotations

import contextlib
import csv
import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select

from siyu.services.brands import get_brand
from siyu.services.context import Context
from siyu.services.errors import NotFound, SiyuError
from siyu.services.imports import writers
from siyu.services.imports.kinds import PARSERS, RowError, kind_spec
from siyu.services.imports.mapping import guess_mapping, resolve_mapping
from siyu.services.imports.readers import file_format, file_sha256, read_table
from siyu.stores.state.models import ImportJobRow, utcnow

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
CHUNK_ROWS = 5000
PREVIEW_ROWS = 10
ERROR_COLUMNS = ("row", "column", "value", "reason", "fix")
OBSERVING_KINDS = {"customers", "orders", "wecom_contacts", "online_retail"}


@dataclass(frozen=True)
class ImportJobView:
    """An import job as the console, API and CLI show it."""

    id: str
    brand_id: str
    kind: str
    filename: str
    file_sha256: str
    status: str
    rows_total: int
    rows_done: int
    rows_ok: int
    rows_skipped: int
    rows_failed: int
    mapping: dict[str, Any]
    error_report: str | None
    message: str
    created_by: str
    created_at: datetime | None
    finished_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("created_at", "finished_at"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


def _view(row: ImportJobRow) -> ImportJobView:
    return ImportJobView(
        row.id,
        row.brand_id,
        row.kind,
        row.filename,
        row.file_sha256,
        row.status,
        row.rows_total or 0,
        row.rows_done or 0,
        row.rows_ok or 0,
        row.rows_skipped or 0,
        row.rows_failed or 0,
        dict(row.mapping or {}),
        row.error_report,
        row.message or "",
        row.created_by or "",
        row.created_at,
        row.finished_at,
    )


def preview(path: str | Path, kind: str) -> dict[str, Any]:
    """Headers, the first rows and the guessed mapping of a file, for a mapping screen."""
    spec = kind_spec(kind)
    path = Path(path)
    if spec.name == "online_retail":  # pragma: no cover - not a generic kind
        raise SiyuError("online_retail has a fixed layout; no preview needed", field="kind")
    frame = read_table(path, nrows=PREVIEW_ROWS)
    headers = [str(c) for c in frame.columns]
    return {
        "kind": spec.name,
        "title": spec.title,
        "filename": path.name,
        "headers": headers,
        "rows": frame.to_dict(orient="records"),
        "mapping": guess_mapping(spec.name, headers),
        "fields": [{"name": f.name, "required": f.required} for f in spec.fields],
        "any_of": list(spec.any_of),
    }


def get_job(ctx: Context, job_id: str) -> ImportJobView:
    """One import job; NotFound when there is none."""
    with ctx.sessions() as s:
        row = s.get(ImportJobRow, job_id)
    if row is None:
        raise NotFound(f"import job {job_id!r} does not exist")
    return _view(row)


def list_jobs(ctx: Context, brand_id: str, limit: int = 100) -> list[ImportJobView]:
    """A brand's import jobs, newest first."""
    with ctx.sessions() as s:
        rows = s.scalars(
            select(ImportJobRow)
            .where(ImportJobRow.brand_id == brand_id)
            .order_by(ImportJobRow.created_at.desc(), ImportJobRow.id)
            .limit(limit)
        ).all()
    return [_view(r) for r in rows]


def _update(ctx: Context, job_id: str, **values: Any) -> None:
    with ctx.sessions() as s:
        row = s.get(ImportJobRow, job_id)
        if row is None:
            raise NotFound(f"import job {job_id!r} does not exist")
        for key, value in values.items():
            setattr(row, key, value)
        s.commit()


def create_job(
    ctx: Context,
    brand_id: str,
    kind: str,
    path: str | Path,
    mapping: dict[str, str | None] | None = None,
    created_by: str = "",
) -> str:
    """Check the brand, file and mapping, and record a pending job; return its id."""
    path = Path(path).resolve()
    get_brand(ctx, brand_id)
    if kind in ("online_retail", "online-retail"):
        name, resolved = "online_retail", {}
        if not path.is_file():
            raise SiyuError(f"file {str(path)!r} does not exist", field="file")
    else:
        name = kind_spec(kind).name
        file_format(path)
        head = read_table(path, nrows=1)  # headers (after any title rows)
        resolved = resolve_mapping(name, [str(c) for c in head.columns], mapping)
    job_id = uuid.uuid4().hex[:16]
    with ctx.sessions() as s:
        s.add(
            ImportJobRow(
                id=job_id,
                brand_id=brand_id,
                kind=name,
                filename=str(path),
                file_sha256=file_sha256(path),
                status="pending",
                mapping=resolved,
                created_by=created_by,
            )
        )
        s.commit()
    return job_id


def run_import(
    ctx: Context,
    brand_id: str,
    kind: str,
    path: str | Path,
    mapping: dict[str, str | None] | None = None,
    progress: Progress | None = None,
    created_by: str = "",
) -> ImportJobView:
    """Import a file now (in this thread); bad rows are reported and skipped, good rows land."""
    job_id = create_job(ctx, brand_id, kind, path, mapping, created_by)
    return execute_job(ctx, job_id, progress)


def submit_import(
    ctx: Context,
    brand_id: str,
    kind: str,
    path: str | Path,
    mapping: dict[str, str | None] | None = None,
    created_by: str = "",
) -> str:
    """Record a pending job and queue it on Huey; return the job id (poll it with ``get_job``)."""
    from siyu.workers import enqueue_import

    job_id = create_job(ctx, brand_id, kind, path, mapping, created_by)
    enqueue_import(ctx, job_id)
    return job_id


def requeue_interrupted(ctx: Context) -> list[str]:
    """Queue again the jobs left ``running`` by a process that died (called when a consumer starts).

    DuckDB admits one writing process, so when this process's consumer starts no other process can be running
    them.  Re-running is safe: an import adds only rows that are not there yet."""
    from siyu.workers import enqueue_import

    with ctx.sessions() as s:
        rows = s.scalars(select(ImportJobRow).where(ImportJobRow.status == "running")).all()
        ids = [r.id for r in rows]
        for r in rows:
            r.status = "pending"
            r.message = "interrupted (the process stopped); queued again"
        s.commit()
    for job_id in ids:
        log.warning("import job %s was interrupted; queued again", job_id)
        enqueue_import(ctx, job_id)
    return ids


def job_dir(ctx: Context, job_id: str) -> Path:
    return ctx.settings.imports_dir / job_id


def execute_job(ctx: Context, job_id: str, progress: Progress | None = None) -> ImportJobView:
    """Run a pending job to the end; a job that is not pending is returned unchanged (safe on retries)."""
    job = get_job(ctx, job_id)
    if job.status != "pending":
        return job
    _update(ctx, job_id, status="running")
    try:
        if job.kind == "online_retail":
            from siyu.services.imports import online_retail

            online_retail.execute(ctx, job, progress)
        else:
            _execute_generic(ctx, job, progress)
    except Exception as exc:
        log.exception("import job %s failed", job_id)
        message = exc.message if isinstance(exc, SiyuError) else f"{type(exc).__name__}: {exc}"
        _update(ctx, job_id, status="failed", message=message, finished_at=utcnow())
    return get_job(ctx, job_id)


def _previous_import(ctx: Context, job: ImportJobView) -> ImportJobView | None:
    with ctx.sessions() as s:
        row = s.scalars(
            select(ImportJobRow)
            .where(
                ImportJobRow.brand_id == job.brand_id,
                ImportJobRow.kind == job.kind,
                ImportJobRow.file_sha256 == job.file_sha256,
                ImportJobRow.status == "done",
                ImportJobRow.id != job.id,
            )
            .order_by(ImportJobRow.created_at.desc())
            .limit(1)
        ).first()
    return _view(row) if row is not None else None


def _lookups(ctx: Context, brand_id: str, kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if kind in ("channel_spend", "wecom_contacts"):
        rows = ctx.warehouse.fetch("SELECT channel_id, name FROM channels WHERE brand_id = ?", [brand_id])
        channels = {name: cid for cid, name in rows}
        channels.update({cid: cid for cid, _ in rows})
        out["channels"] = channels
    if kind == "wecom_contacts":
        rows = ctx.warehouse.fetch("SELECT guide_id, wecom_userid FROM guides WHERE brand_id = ?", [brand_id])
        guides = {gid: gid for gid, _ in rows}
        guides.update({uid: gid for gid, uid in rows if uid})
        out["guides"] = guides
    return out


def _group_orders(units: list[writers.Unit], errors: list[tuple[int, RowError]]) -> list[writers.Unit]:
    """Group order-line units by order id into one unit per order (lines in file order)."""
    groups: dict[str, list[writers.Unit]] = {}
    for u in units:
        groups.setdefault(u.record["order_id"], []).append(u)
    out: list[writers.Unit] = []
    for order_id, members in groups.items():
        first = members[0].record
        bad = [m for m in members[1:] if m.record["customer_ref"] != first["customer_ref"]]
        if bad:
            for m in members:
                errors.append(
                    (
                        m.rows[0],
                        RowError(
                            first["customer_ref"].type,
                            m.record["customer_ref"].value,
                            f"the lines of order {order_id!r} name different customers",
                            "give every line of one order the same customer",
                        ),
                    )
                )
            continue
        lines = [m.record["line"] for m in members if m.record["line"] is not None]
        amounts = [m.record["amount"] for m in members if m.record["amount"] is not None]
        line_total = sum((line["amount"] for line in lines), Decimal(0))
        if not amounts:
            amount = line_total
        elif (
            len(amounts) == len(members)
            and len(members) > 1
            and all(m.record["line"] is not None and m.record["amount"] == m.record["line"]["amount"] for m in members)
        ):
            amount = line_total  # the amount column holds line amounts
        elif len(set(amounts)) == 1:
            amount = amounts[0]  # the order amount repeated on each line
        else:
            amount = sum(amounts, Decimal(0))  # differing amounts are line amounts
        idents = list(first["identifiers"])
        for m in members[1:]:
            idents += [i for i in m.record["identifiers"] if i not in idents]
        record = {
            **first,
            "identifiers": idents,
            "amount": Decimal(amount).quantize(Decimal("0.01")),
            "lines": lines,
        }
        out.append(writers.Unit([r for m in members for r in m.rows], record))
    return out


def _execute_generic(ctx: Context, job: ImportJobView, progress: Progress | None) -> None:
    path = Path(job.filename)
    spec = kind_spec(job.kind)
    frame = read_table(path)
    mapping = {k: v for k, v in job.mapping.items() if v}
    missing = [c for c in mapping.values() if c not in frame.columns]
    if missing:
        raise SiyuError(f"the file no longer has column(s) {', '.join(missing)}", field="mapping")
    total = len(frame)
    _update(ctx, job.id, rows_total=total)
    first_row = int(frame.attrs.get("first_row", 2))
    parser = PARSERS[spec.name]
    fields = list(mapping)
    columns = [frame[mapping[f]].tolist() for f in fields]
    units: list[writers.Unit] = []
    errors: list[tuple[int, RowError]] = []
    for i, values in enumerate(zip(*columns, strict=True)):
        row = dict(zip(fields, values, strict=True))
        try:
            units.append(writers.Unit([i + first_row], parser(row)))
        except RowError as err:
            errors.append((i + first_row, err))
    if spec.name == "orders":
        units = _group_orders(units, errors)
    lookups = _lookups(ctx, job.brand_id, spec.name)
    source = writers.Source(job.brand_id, f"import:{spec.name}", path.name, utcnow())
    done = failed = len(errors)
    ok = skipped = 0
    if progress:
        progress(done, total)
    _update(ctx, job.id, rows_done=done, rows_failed=failed)
    start = 0
    while start < len(units):
        chunk: list[writers.Unit] = []
        size = 0
        while start < len(units) and (size < CHUNK_ROWS or not chunk):
            chunk.append(units[start])
            size += len(units[start].rows)
            start += 1
        with ctx.warehouse.write_lock, ctx.warehouse.transaction() as cur:
            if spec.name == "customers":
                result = writers.write_customers(cur, chunk, source)
            elif spec.name == "orders":
                result = writers.write_orders(cur, chunk, source)
            elif spec.name == "wecom_contacts":
                result = writers.write_wecom_contacts(cur, chunk, source, lookups)
            else:
                result = writers.write_reference(cur, spec.name, chunk, source, lookups)
        errors.extend(result.errors)
        bad = len(result.errors)
        ok += result.ok
        skipped += size - result.ok - bad
        failed += bad
        done += size
        _update(ctx, job.id, rows_done=done, rows_ok=ok, rows_skipped=skipped, rows_failed=failed)
        if progress:
            progress(done, total)
    report = write_error_report(ctx, job.id, path, errors, mapping)
    notes = [f"{ok} rows imported, {skipped} already present, {failed} failed"]
    previous = _previous_import(ctx, job)
    if previous is not None:
        notes.append(f"this file was imported before (job {previous.id})")
    if spec.name in OBSERVING_KINDS and ok:
        notes.append(resolve_identities(ctx, job.brand_id))
    if spec.name == "customers" and units:  # customers without a guide enter the pool (guide_work.pool_feed)
        notes.append(_pool_leads(ctx, job, units))
    _update(
        ctx,
        job.id,
        status="done",
        error_report=str(report) if report else None,
        message="; ".join(notes),
        finished_at=utcnow(),
    )


def _pool_leads(ctx: Context, job: ImportJobView, units: list[writers.Unit]) -> str:
    from siyu.services.guide_work import pool_feed

    pairs = sorted({(i.type, i.value) for u in units for i in u.record["identifiers"]})
    try:
        got = pool_feed.from_import(ctx, job.brand_id, job.id, pairs)
    except Exception:
        log.exception("import job %s: putting its customers into the pool failed", job.id)
        return "the customer pool was not fed (see the log)"
    return f"{got['added']} customers without a guide entered the customer pool"


def write_error_report(
    ctx: Context, job_id: str, source: Path, errors: list[tuple[int, RowError]], mapping: dict[str, str]
) -> Path | None:
    """Write ``errors.csv`` under the job directory and ``<file>.errors.csv`` beside the source; None if clean."""
    beside = source.with_name(source.name + ".errors.csv")
    if not errors:
        with contextlib.suppress(OSError):
            beside.unlink(missing_ok=True)
        return None
    target = job_dir(ctx, job_id) / "errors.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    rows = sorted(errors, key=lambda e: e[0])
    for out in (target, beside):
        try:
            with out.open("w", newline="", encoding="utf-8-sig") as fh:
                writer = csv.writer(fh)
                writer.writerow(ERROR_COLUMNS)
                for row_no, err in rows:
                    writer.writerow([row_no, mapping.get(err.field, err.field), err.value, err.reason, err.fix])
        except OSError:
            if out == target:
                raise
            log.warning("cannot write %s beside the source file", out)
    return target


def resolve_identities(ctx: Context, brand_id: str) -> str:
    """Run OneID over the new observations; return a note for the job message."""
    try:
        from siyu.services import oneid  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return "OneID not available yet: identities resolve on its next run"
    try:
        stats = oneid.resolve_pending(ctx, brand_id)
    except Exception as exc:
        log.exception("OneID resolution after import failed")
        return f"data landed, but OneID resolution failed: {exc}"
    fields = ("observations", "customers", "merges", "conflicts")
    if all(hasattr(stats, f) for f in fields):
        return "OneID: " + ", ".join(f"{getattr(stats, f)} {f}" for f in fields)
    return f"OneID: {stats}"
