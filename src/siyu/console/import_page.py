"""Console import page: upload, choose kind, edit the guessed mapping, run, poll progress, show row errors."""

from __future__ import annotations

import csv
import uuid
from pathlib import Path
from typing import Any

from fastapi.responses import RedirectResponse
from nicegui import events, ui

from siyu.console.layout import frame
from siyu.console.session import context, current_user, login_redirect, tr
from siyu.domain.models import Role
from siyu.services import imports
from siyu.services.errors import SiyuError

POLL_SECONDS = 1.0
ERROR_ROWS_SHOWN = 200


def _error_rows(path: str | None) -> tuple[list[str], list[dict[str, str]]]:
    """Header and first rows of an error report CSV."""
    if not path or not Path(path).exists():
        return [], []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        rows = [row for _, row in zip(range(ERROR_ROWS_SHOWN), reader, strict=False)]
        return list(reader.fieldnames or []), rows


def register() -> None:
    """Register the import page on NiceGUI."""

    @ui.page("/import")
    def import_page() -> RedirectResponse | None:
        user = current_user()
        if user is None:
            return login_redirect()
        ctx = context()
        state: dict[str, Any] = {"path": None, "mapping": {}, "job_id": None}
        with frame(user, "import.title", "nav.import"):
            ui.label(tr("import.title")).classes("text-2xl")
            if user.role == Role.GUIDE:
                ui.label(tr("import.forbidden")).classes("text-red-600")
                return None
            kinds = {name: f"{spec.title} ({name})" for name, spec in imports.KINDS.items() if name != "online_retail"}
            kind = ui.select(kinds, value="customers", label=tr("import.kind")).classes("w-72")
            upload_slot = ui.row()
            uploaded = ui.label("")
            mapping_box = ui.column().classes("w-full")
            progress_box = ui.column().classes("w-full")
            jobs_box = ui.column().classes("w-full")

            def show_preview() -> None:
                mapping_box.clear()
                if not state["path"]:
                    return
                try:
                    info = imports.preview(state["path"], str(kind.value))
                except SiyuError as exc:
                    ui.notify(exc.message, type="negative")
                    return
                state["mapping"] = dict(info["mapping"])
                headers: list[str] = info["headers"]
                options = {"": tr("import.unmapped"), **{h: h for h in headers}}
                with mapping_box:
                    ui.label(tr("import.mapping")).classes("text-lg font-bold")
                    with ui.grid(columns=2).classes("gap-x-6 gap-y-1"):
                        for f in info["fields"]:
                            name = f["name"]
                            label = name + (f" *{tr('import.required')}" if f["required"] else "")
                            ui.label(label)

                            def on_change(e: events.ValueChangeEventArguments, name: str = name) -> None:
                                state["mapping"][name] = e.value or None

                            ui.select(options, value=state["mapping"].get(name) or "", on_change=on_change).classes(
                                "w-64"
                            ).props("dense")
                    ui.label(tr("import.preview")).classes("text-lg font-bold")
                    ui.table(
                        columns=[{"name": h, "label": h, "field": h, "align": "left"} for h in headers],
                        rows=[{h: str(r.get(h, "")) for h in headers} for r in info["rows"][:10]],
                    ).props("flat dense bordered").classes("w-full")
                    ui.button(tr("import.run"), icon="play_arrow", on_click=run).props("data-testid=run-import")

            async def on_upload(e: events.UploadEventArguments) -> None:
                folder = ctx.settings.imports_dir / "uploads" / uuid.uuid4().hex
                folder.mkdir(parents=True, exist_ok=True)
                name = Path(e.file.name).name or "upload.csv"
                target = folder / name
                await e.file.save(target)
                state["path"] = str(target)
                uploaded.text = tr("import.uploaded", name=name)
                show_preview()

            def run() -> None:
                if not state["path"]:
                    ui.notify(tr("import.need_file"), type="warning")
                    return
                try:
                    job_id = imports.submit_import(
                        ctx, user.brand_id, str(kind.value), state["path"], state["mapping"], user.username
                    )
                except SiyuError as exc:
                    ui.notify(exc.message, type="negative")
                    return
                state["job_id"] = job_id
                poll.activate()

            def show_job() -> None:
                job_id = state["job_id"]
                if not job_id:
                    return
                job = imports.get_job(ctx, job_id)
                progress_box.clear()
                with progress_box:
                    ui.label(tr("import.progress")).classes("text-lg font-bold")
                    ui.label(tr("import.status", status=tr("job." + job.status))).props("data-testid=job-status")
                    total = max(job.rows_total, 1)
                    ui.linear_progress(job.rows_done / total, show_value=False).classes("w-96")
                    ui.label(
                        tr(
                            "import.counts",
                            done=job.rows_done,
                            total=job.rows_total,
                            ok=job.rows_ok,
                            skipped=job.rows_skipped,
                            failed=job.rows_failed,
                        )
                    )
                    if job.message:
                        ui.label(job.message).classes("text-gray-600")
                    if job.status in ("done", "failed"):
                        poll.deactivate()
                        show_jobs()
                    header, rows = _error_rows(job.error_report)
                    if rows:
                        ui.label(tr("import.errors")).classes("text-lg font-bold")
                        ui.table(
                            columns=[{"name": h, "label": h, "field": h, "align": "left"} for h in header],
                            rows=rows,
                        ).props("flat dense bordered data-testid=error-report").classes("w-full")
                        report = str(job.error_report)
                        ui.button(tr("import.download"), icon="download", on_click=lambda: ui.download.file(report))
                if job.finished_at is not None:
                    poll.deactivate()

            def show_jobs() -> None:
                jobs_box.clear()
                with jobs_box:
                    ui.label(tr("import.recent")).classes("text-lg font-bold")
                    cols = [
                        ("filename", "import.col.filename"),
                        ("kind", "import.kind"),
                        ("status", "col.status"),
                        ("rows_ok", "import.col.rows"),
                        ("created_at", "import.col.created_at"),
                    ]
                    rows = [
                        {
                            "id": j.id,
                            "filename": Path(j.filename).name,
                            "kind": j.kind,
                            "status": tr("job." + j.status),
                            "rows_ok": f"{j.rows_ok}/{j.rows_total} (✗ {j.rows_failed})",
                            "created_at": str(j.created_at or "")[:16],
                        }
                        for j in imports.list_jobs(ctx, user.brand_id, limit=10)
                    ]
                    ui.table(
                        columns=[{"name": f, "label": tr(k), "field": f} for f, k in cols],
                        rows=rows,
                        row_key="id",
                    ).props("flat dense bordered").classes("w-full")

            with upload_slot:
                ui.upload(label=tr("import.upload"), on_upload=on_upload, auto_upload=True, max_files=1).props(
                    "accept=.csv,.xlsx,.xls,.txt data-testid=upload"
                ).classes("w-96")
            kind.on_value_change(lambda _: show_preview())
            poll = ui.timer(POLL_SECONDS, show_job, active=False)
            show_jobs()
        return None
