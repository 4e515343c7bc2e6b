"""Commands of this feature; ``codedraft.cli.register`` adds every command in ``commands``.

``codedraft search-rebuild`` rebuilds the index from the database with a progress bar;
``codedraft search-check`` compares them and exits with status 1 when they differ.
"""
from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

SHOWN_IDS = 10


@click.command("search-rebuild")
@with_appcontext
def rebuild_command() -> None:
    """Rebuild the search index from the database (clauses, drafts, comments)."""
    from codedraft.search.indexing import count_documents, index_location, rebuild_index, search_engine

    total = count_documents()
    with click.progressbar(length=max(total, 1), label="Indexing", file=sys.stderr) as bar:
        done_so_far = [0]

        def progress(done: int, _total: int | None) -> None:
            bar.update(done - done_so_far[0])
            done_so_far[0] = done

        indexed = rebuild_index(progress=progress)
    click.echo(f"Indexed {indexed} documents in {index_location(search_engine())}.")


@click.command("search-check")
@with_appcontext
def check_command() -> None:
    """Compare the search index with the database; exit status 1 if they differ."""
    from codedraft.search.indexing import check_index

    report = check_index()
    click.echo(f"Database: {report.expected} documents; index: {report.indexed}.")
    for label, ids in (("missing", report.missing), ("stale", report.stale), ("extra", report.extra)):
        if ids:
            more = f" (and {len(ids) - SHOWN_IDS} more)" if len(ids) > SHOWN_IDS else ""
            click.echo(f"{len(ids)} {label}: {', '.join(ids[:SHOWN_IDS])}{more}")
    if report.in_sync:
        click.echo("The index is in sync with the database.")
        return
    click.echo("The index is out of sync: run `codedraft search-rebuild`.", err=True)
    sys.exit(1)


commands: list[click.Command] = [rebuild_command, check_command]
