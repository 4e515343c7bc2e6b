"""Commands of this feature; ``codedraft.cli.register`` adds every command in ``commands``.

``codedraft export draft|redline|feedback`` make one export now, with a progress bar, and write
it to ``--out`` (a file, or a folder where a safe name is chosen). They run with the operator's
authority: the person at the server's shell can read the database anyway.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from codedraft.exports import builders, jobs
from codedraft.exports.filenames import safe_export_path
from codedraft.extensions import db


def _code(slug: str) -> Any:
    from codedraft.codes.models import Code

    code = db.session.scalar(select(Code).where(Code.slug == slug))
    if code is None:
        raise click.ClickException(f"No code with slug {slug!r}.")
    return code


def _target(out: str | None, result: jobs.ExportResult) -> Path:
    """``--out`` as given, or a safe name inside it when it is a folder (or absent: the cwd)."""
    if out is None:
        return safe_export_path(Path.cwd(), result.title, result.suffix)
    path = Path(out)
    if path.is_dir():
        return safe_export_path(path, result.title, result.suffix)
    return path


def run_export_command(slug: str, kind: str, fmt: str, params: dict[str, Any], out: str | None) -> Path:
    """Make the export with a click progress bar and write it; returns where it went.

    Raises click.ClickException for an unknown code, draft or format.
    """
    code = _code(slug)
    try:
        request = jobs.ExportRequest.build(kind, fmt, params)
    except jobs.ExportError as error:
        raise click.ClickException(str(error)) from error
    with click.progressbar(length=100, label=f"Exporting {kind} as {request.fmt}", file=sys.stderr) as bar:
        shown = [0]

        def progress(percent: int) -> None:
            if percent > shown[0]:
                bar.update(percent - shown[0])
                shown[0] = percent

        try:
            result = jobs.produce_export(code, request, progress=progress)
        except builders.UnknownDraft as error:
            raise click.ClickException(str(error)) from error
    target = _target(out, result)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(result.data)
    click.echo(f"Wrote {target} ({len(result.data):,} bytes).")
    return target


@click.group("export")
def export_group() -> None:
    """Export a draft, a redline between drafts, or the feedback dataset."""


@export_group.command("draft")
@click.option("--code", "slug", required=True, help="Slug of the code.")
@click.option("--draft", "draft", default="live", show_default=True, help="Draft number, or 'live'.")
@click.option("--format", "fmt", type=click.Choice(jobs.FORMATS[jobs.ExportKind.DRAFT]), default="pdf",
              show_default=True)
@click.option("--out", type=click.Path(dir_okay=True, writable=True), help="File or folder to write.")
@with_appcontext
def export_draft_command(slug: str, draft: str, fmt: str, out: str | None) -> None:
    """A consolidated draft (or the live text) as PDF, DOCX, HTML or Markdown."""
    run_export_command(slug, "draft", fmt, {"draft": draft}, out)


@export_group.command("redline")
@click.option("--code", "slug", required=True, help="Slug of the code.")
@click.option("--from", "old", required=True, help="Draft number to compare from.")
@click.option("--to", "new", default="live", show_default=True, help="Draft number to compare to, or 'live'.")
@click.option("--format", "fmt", type=click.Choice(jobs.FORMATS[jobs.ExportKind.REDLINE]), default="pdf",
              show_default=True)
@click.option("--layout", type=click.Choice(jobs.LAYOUTS), default="inline", show_default=True)
@click.option("--changed-only", is_flag=True, help="Leave out unchanged clauses (HTML; WeasyPrint PDF).")
@click.option("--out", type=click.Path(dir_okay=True, writable=True), help="File or folder to write.")
@with_appcontext
def export_redline_command(slug: str, old: str, new: str, fmt: str, layout: str, changed_only: bool,
                           out: str | None) -> None:
    """The changes between two drafts: HTML, PDF, or DOCX with tracked changes."""
    run_export_command(slug, "redline", fmt, {"from": old, "to": new, "layout": layout,
                                              "changed_only": changed_only}, out)


@export_group.command("feedback")
@click.option("--code", "slug", required=True, help="Slug of the code.")
@click.option("--format", "fmt", type=click.Choice(jobs.FORMATS[jobs.ExportKind.FEEDBACK]), default="xlsx",
              show_default=True)
@click.option("--include-hidden", is_flag=True, help="Include comments hidden by moderation.")
@click.option("--out", type=click.Path(dir_okay=True, writable=True), help="File or folder to write.")
@with_appcontext
def export_feedback_command(slug: str, fmt: str, include_hidden: bool, out: str | None) -> None:
    """The feedback dataset (CSV, XLSX, JSON) or report (HTML, PDF)."""
    run_export_command(slug, "feedback", fmt, {"include_hidden": include_hidden}, out)


commands: list[click.Command] = [export_group]
