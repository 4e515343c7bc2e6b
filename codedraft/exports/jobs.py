"""Export jobs: what to export, producing it, and running it in the background with progress.

:func:`produce_export` turns an :class:`ExportRequest` into bytes (used by the CLI directly and
by jobs). :class:`ExportRunner` runs jobs in a small thread pool (two workers: a PDF is CPU
bound and must not starve the co-editing threads), each in its own application context, and
records state and progress on an :class:`ExportJob` row, which pages poll. Editing never waits
for an export: jobs only read clause text and write their own row.
"""
from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from threading import Lock
from typing import Any

from flask import Flask, current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import JSON, ForeignKey, String, update
from sqlalchemy.orm import Mapped, mapped_column

from codedraft.accounts.models import User
from codedraft.codes.models import Code
from codedraft.concurrency import gevent_active
from codedraft.exports import builders
from codedraft.exports.builders import LIVE, DraftSelector, FeedbackScope
from codedraft.exports.compare import compare_documents
from codedraft.exports.filenames import export_title, safe_download_name, safe_export_path
from codedraft.extensions import db
from codedraft.markdown import render_markdown
from codedraft.timeutil import utcnow

log = logging.getLogger(__name__)

Progress = Callable[[int], None]  # percent done, 0-100


class ExportKind(StrEnum):
    DRAFT = "draft"
    REDLINE = "redline"
    FEEDBACK = "feedback"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


#: Formats each kind of export offers, in the order forms list them.
FORMATS: dict[ExportKind, tuple[str, ...]] = {
    ExportKind.DRAFT: ("pdf", "docx", "html", "md"),
    ExportKind.REDLINE: ("pdf", "docx", "html"),
    ExportKind.FEEDBACK: ("xlsx", "csv", "json", "html", "pdf"),
}

MIME_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}

LAYOUTS = ("inline", "side-by-side")


class ExportError(ValueError):
    """The export asked for cannot be made (unknown kind, format, draft or layout)."""


class ExportJob(db.Model):
    """One background export. ``id`` is a random token: it is also the job's URL."""

    __tablename__ = "export_jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("codes.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    format: Mapped[str] = mapped_column(String(10))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(10), default=JobStatus.QUEUED.value)
    progress: Mapped[int] = mapped_column(default=0)
    message: Mapped[str] = mapped_column(String(500), default="")
    file_path: Mapped[str | None] = mapped_column(String(1000))
    download_name: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.DONE.value, JobStatus.FAILED.value)


@dataclass(frozen=True)
class ExportRequest:
    """What to export. ``draft`` for a consolidated draft; ``old``/``new`` for a redline."""

    kind: ExportKind
    fmt: str
    draft: DraftSelector | None = None
    old: DraftSelector | None = None
    new: DraftSelector | None = None
    layout: str = "inline"
    changed_only: bool = False
    include_hidden: bool = False

    def params(self) -> dict[str, Any]:
        """JSON-ready parameters (stored on the job row)."""
        return {"draft": self.draft, "from": self.old, "to": self.new, "layout": self.layout,
                "changed_only": self.changed_only, "include_hidden": self.include_hidden}

    @classmethod
    def build(cls, kind: object, fmt: object, params: dict[str, Any]) -> ExportRequest:
        """A validated request from user or stored input; raises :class:`ExportError`."""
        try:
            export_kind = ExportKind(str(kind))
        except ValueError as error:
            raise ExportError(f"unknown export: {str(kind)[:40]!r}") from error
        fmt_text = str(fmt).lower()
        if fmt_text not in FORMATS[export_kind]:
            raise ExportError(f"{export_kind.value} exports come as {', '.join(FORMATS[export_kind])}")
        layout = str(params.get("layout") or "inline")
        if layout not in LAYOUTS:
            raise ExportError(f"unknown layout: {layout[:40]!r}")

        def selector(name: str) -> DraftSelector:
            raw = params.get(name)
            if raw in (None, ""):
                raise ExportError(f"choose a draft for {name!r}")
            try:
                return builders.parse_selector(raw)
            except builders.UnknownDraft as error:
                raise ExportError(str(error)) from error

        return cls(
            kind=export_kind, fmt=fmt_text,
            draft=selector("draft") if export_kind is ExportKind.DRAFT else None,
            old=selector("from") if export_kind is ExportKind.REDLINE else None,
            new=selector("to") if export_kind is ExportKind.REDLINE else None,
            layout=layout, changed_only=bool(params.get("changed_only")),
            include_hidden=bool(params.get("include_hidden")),
        )


@dataclass(frozen=True)
class ExportResult:
    data: bytes
    suffix: str
    title: str  # the download name before sanitising: code title and what was exported

    @property
    def mime_type(self) -> str:
        return MIME_TYPES[self.suffix]


def _scaled(progress: Progress, start: int, end: int) -> Callable[[int, int], None]:
    return lambda done, total: progress(start + (end - start) * done // max(total, 1))


def _redline_pdf(comparison: Any, request: ExportRequest) -> bytes:
    """LibreOffice lays the tracked-changes DOCX out in ~3 s; WeasyPrint needs 7-9 s for the
    same redline, so it is only the fallback (and the choice for the side-by-side layout)."""
    from codedraft.exports import pdf_export

    engine = str(current_app.config.get("EXPORT_REDLINE_PDF_ENGINE", "auto"))
    use_office = engine == "libreoffice" or (engine == "auto" and pdf_export.libreoffice_binary() is not None)
    if use_office and request.layout == "inline":
        try:
            return pdf_export.export_redline_pdf_via_docx(comparison)
        except pdf_export.ConversionFailed:
            log.exception("redline PDF through LibreOffice failed; falling back to WeasyPrint")
    from codedraft.exports.redline import RedlineLayout

    return pdf_export.export_redline_pdf(
        comparison, layout=RedlineLayout(request.layout), changed_only=request.changed_only,
        fetcher=pdf_export.app_asset_fetcher(),
    )


def _produce_draft(code: Code, request: ExportRequest, progress: Progress) -> ExportResult:
    assert request.draft is not None
    document = builders.load_document(code, request.draft)
    progress(20)
    title = export_title(document.code_title, document.draft_label)
    if request.fmt == "md":
        from codedraft.exports.markdown_export import export_markdown

        return ExportResult(export_markdown(document).encode(), "md", title)
    if request.fmt == "html":
        from codedraft.exports.html_export import export_html

        return ExportResult(export_html(document, render_markdown).encode(), "html", title)
    if request.fmt == "docx":
        from codedraft.exports.docx_export import export_docx

        return ExportResult(export_docx(document, render_markdown, progress=_scaled(progress, 20, 95)), "docx", title)
    from codedraft.exports.pdf_export import app_asset_fetcher, export_pdf

    return ExportResult(export_pdf(document, render_markdown, fetcher=app_asset_fetcher()), "pdf", title)


def _produce_redline(code: Code, request: ExportRequest, progress: Progress) -> ExportResult:
    assert request.old is not None and request.new is not None
    old = builders.load_document(code, request.old)
    new = builders.load_document(code, request.new)
    progress(10)
    comparison = compare_documents(old, new)
    progress(30)
    title = export_title(code.title, f"changes {_short(request.old)} to {_short(request.new)}")
    if request.fmt == "html":
        from codedraft.exports.redline import RedlineLayout, export_redline_html

        html = export_redline_html(comparison, layout=RedlineLayout(request.layout), changed_only=request.changed_only)
        return ExportResult(html.encode(), "html", title)
    if request.fmt == "docx":
        from codedraft.exports.credits import redline_credits
        from codedraft.exports.docx_redline import export_redline_docx

        fallback, credits = redline_credits(code, request.old, request.new, comparison)
        data = export_redline_docx(comparison, author=fallback.author, date=fallback.at, credits=credits,
                                   progress=_scaled(progress, 40, 95))
        return ExportResult(data, "docx", title)
    return ExportResult(_redline_pdf(comparison, request), "pdf", title)


def _short(selector: DraftSelector) -> str:
    return "live" if selector == LIVE else f"draft {selector}"


def _produce_feedback(code: Code, request: ExportRequest, progress: Progress) -> ExportResult:
    from codedraft.exports import feedback_export

    configured = tuple(current_app.config.get("STAKEHOLDER_CATEGORIES", ()))
    rows = builders.feedback_rows(code, FeedbackScope(include_hidden=request.include_hidden), dict(configured))
    progress(30)
    categories = builders.feedback_categories(configured)
    title = export_title(code.title, "feedback")
    latest = _latest_label(code)
    if request.fmt == "csv":
        return ExportResult(feedback_export.export_feedback_csv(rows).encode("utf-8-sig"), "csv", title)
    if request.fmt == "json":
        return ExportResult(feedback_export.export_feedback_json(rows).encode(), "json", title)
    if request.fmt == "xlsx":
        words = builders.feedback_words(builders.export_language(code))
        return ExportResult(feedback_export.export_feedback_xlsx(rows, categories=categories, words=words), "xlsx",
                            title)
    if request.fmt == "html":
        html = feedback_export.export_feedback_report_html(
            rows, code_title=code.title, draft_label=latest, language=code.language, categories=categories,
            words=builders.feedback_words(builders.export_language(code)))
        return ExportResult(html.encode(), "html", title)
    from codedraft.exports.pdf_export import app_asset_fetcher, export_feedback_report_pdf

    pdf = export_feedback_report_pdf(rows, code_title=code.title, draft_label=latest, language=code.language,
                                     categories=categories, fetcher=app_asset_fetcher(),
                                     words=builders.feedback_words(builders.export_language(code)))
    return ExportResult(pdf, "pdf", title)


def _latest_label(code: Code) -> str:
    from codedraft.drafts.operations import latest_draft

    draft = latest_draft(code)
    with force_locale(builders.export_language(code)):
        return builders.draft_label(draft) if draft is not None else _("the live text")


_PRODUCERS = {
    ExportKind.DRAFT: _produce_draft,
    ExportKind.REDLINE: _produce_redline,
    ExportKind.FEEDBACK: _produce_feedback,
}


def produce_export(code: Code, request: ExportRequest, *, progress: Progress | None = None) -> ExportResult:
    """Make the export now, in this thread (needs an app context). ``progress(percent)`` is
    called as work advances. Raises :class:`~codedraft.exports.builders.UnknownDraft` for a
    draft the code does not have; access checks are the caller's job."""
    report = progress or (lambda _percent: None)
    result = _PRODUCERS[request.kind](code, request, report)
    report(100)
    return result


def export_dir(app: Flask) -> Path:
    """The export folder (``EXPORT_DIR``), created on first use."""
    folder = Path(app.config["EXPORT_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_result(app: Flask, job_id: str, result: ExportResult) -> tuple[Path, str]:
    """Write the file inside ``EXPORT_DIR/<job id>/``; returns (path, download name).

    The name comes from :func:`safe_export_path`, so a code titled ``../../x`` still lands in
    the job's folder (SECURITY-CASES 26).
    """
    if not job_id.replace("-", "").replace("_", "").isalnum():
        raise ValueError("job ids are URL-safe tokens")
    folder = export_dir(app) / job_id
    folder.mkdir(exist_ok=True)
    path = safe_export_path(folder, result.title, result.suffix)
    path.write_bytes(result.data)
    return path, safe_download_name(result.title, result.suffix)


def new_job(code: Code, user: User | None, request: ExportRequest) -> ExportJob:
    """A queued job row (flushed, not committed)."""
    job = ExportJob(id=secrets.token_urlsafe(24), code_id=code.id, user_id=user.id if user else None,
                    kind=request.kind.value, format=request.fmt, params=request.params(),
                    status=JobStatus.QUEUED.value, progress=0, message="Waiting to start")
    db.session.add(job)
    db.session.flush()
    return job


# A job still unfinished this long after it was asked for was lost with a server that stopped (a
# restart or a crash while it waited or ran): no export takes anywhere near this long.
ABANDONED_AFTER = timedelta(minutes=30)
INTERRUPTED = "The export was interrupted; please start it again."


def give_up_if_abandoned(job: ExportJob) -> None:
    """Fail ``job`` if it was abandoned, so the person waiting for it is told instead of waiting
    forever. Checked when the job is looked at; safe with several processes (only the lost ones
    are that old)."""
    if not job.finished and utcnow() - job.created_at > ABANDONED_AFTER:
        _record(job.id, status=JobStatus.FAILED.value, message=INTERRUPTED, finished_at=utcnow())
        db.session.refresh(job)


def _record(job_id: str, **values: Any) -> None:
    # A short transaction of its own, so the page polling the job sees progress at once.
    db.session.execute(update(ExportJob).where(ExportJob.id == job_id).values(**values))
    db.session.commit()


def run_job(app: Flask, job_id: str) -> None:
    """Run one job to the end in its own app context; never raises (failure is recorded)."""
    with app.app_context():
        try:
            job = db.session.get(ExportJob, job_id)
            if job is None or job.finished:
                return
            code = db.session.get(Code, job.code_id)
            if code is None:
                _record(job_id, status=JobStatus.FAILED.value, message="The code no longer exists.",
                        finished_at=utcnow())
                return
            request = ExportRequest.build(job.kind, job.format, job.params or {})
            _record(job_id, status=JobStatus.RUNNING.value, progress=1, message="Exporting")
            last = [1]

            def progress(percent: int) -> None:
                # Only report steps of 5 %: each report is a write to the database.
                percent = max(0, min(99, percent))
                if percent >= last[0] + 5:
                    last[0] = percent
                    _record(job_id, progress=percent)

            result = produce_export(code, request, progress=progress)
            path, name = write_result(app, job_id, result)
            _record(job_id, status=JobStatus.DONE.value, progress=100, message="Ready",
                    file_path=str(path), download_name=name, finished_at=utcnow())
        except Exception as error:  # recorded for the person waiting; the traceback goes to the log
            log.exception("export job %s failed", job_id)
            db.session.rollback()
            message = str(error) if isinstance(error, (ExportError, builders.UnknownDraft)) else "The export failed."
            _record(job_id, status=JobStatus.FAILED.value, message=message[:500], finished_at=utcnow())
        finally:
            db.session.remove()


# A job process that runs longer than this is stopped and its job marked failed.
CHILD_TIMEOUT_S = 600.0


def run_job_in_child(app: Flask, job_id: str) -> None:
    """Run one job in a process of its own (``python -m codedraft.exports.child JOB_ID``) and
    wait for it; never raises. If the process dies before finishing the job, the job is failed
    here, so nobody waits for it forever."""
    env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
           "SECRET_KEY": str(app.secret_key), "CODEDRAFT_EXPORT_DIR": str(export_dir(app))}
    command = [sys.executable, "-m", "codedraft.exports.child", job_id]
    try:
        completed = subprocess.run(command, env=env, capture_output=True, timeout=CHILD_TIMEOUT_S, check=False)
        if completed.returncode != 0:
            log.error("export process for job %s exited with %s: %s", job_id, completed.returncode,
                      completed.stderr.decode(errors="replace")[-2000:])
    except (OSError, subprocess.SubprocessError):
        log.exception("export process for job %s could not run", job_id)
    with app.app_context():
        try:
            job = db.session.get(ExportJob, job_id)
            if job is not None and not job.finished:
                _record(job_id, status=JobStatus.FAILED.value, message="The export failed.", finished_at=utcnow())
        finally:
            db.session.remove()


@dataclass
class ExportRunner:
    """The app's background export pool (``app.extensions["codedraft_exports"]``)."""

    app: Flask
    workers: int = 2
    _pool: ThreadPoolExecutor | None = None
    _lock: Lock = field(default_factory=Lock)
    futures: dict[str, Future[None]] = field(default_factory=dict)

    def submit(self, job_id: str) -> Future[None]:
        """Queue a committed job; it starts when one of the workers is free."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="export")
            # Under gevent (the production server) the pool's threads are greenlets: a job there
            # only waits for its own process, so a PDF layout never holds the server's GIL.
            work = run_job_in_child if gevent_active() else run_job
            future = self._pool.submit(work, self.app, job_id)
            self.futures[job_id] = future
        future.add_done_callback(lambda _f: self.futures.pop(job_id, None))
        return future

    def shutdown(self) -> None:
        """Wait for running jobs and stop the workers (tests, and a clean process exit)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


def runner_for(app: Flask) -> ExportRunner:
    """The app's runner, created on first use."""
    runner = app.extensions.get("codedraft_exports")
    if runner is None:
        runner = ExportRunner(app, workers=int(app.config.get("EXPORT_WORKERS", 2)))
        app.extensions["codedraft_exports"] = runner
    return runner


def delete_job_files(app: Flask, job: ExportJob) -> None:
    """Remove a job's folder (inside EXPORT_DIR only)."""
    folder = (export_dir(app) / job.id).resolve()
    if folder.parent == export_dir(app).resolve() and folder.exists():
        shutil.rmtree(folder)
