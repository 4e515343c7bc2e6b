"""Commands of this feature; ``codedraft.cli.register`` adds every command in ``commands``."""
from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import select


@click.command("clause-history")
@click.argument("slug")
@click.argument("uid")
@click.option("--at", type=int, default=None, help="Also print the text as of this update id.")
@with_appcontext
def clause_history_command(slug: str, uid: str, at: int | None) -> None:
    """Print a clause's editing sessions (newest first), and optionally its text as of an update."""
    from codedraft.codes.models import Clause, Code
    from codedraft.collab import history
    from codedraft.collab.views import author_label, clause_log, people_by_id
    from codedraft.extensions import db

    code = db.session.scalar(select(Code).where(Code.slug == slug))
    clause = db.session.scalar(select(Clause).where(Clause.uid == uid, Clause.code_id == code.id)) if code else None
    if clause is None:
        raise click.ClickException(f"No clause {uid!r} in a code {slug!r}.")
    log = clause_log(clause)
    sessions = list(reversed(history.group_sessions(log)))
    people = people_by_id({s.user_id for s in sessions})
    for s in sessions:
        click.echo(f"{s.started_at:%Y-%m-%d %H:%M:%S}  updates {s.first_id}-{s.last_id} ({s.update_count})  "
                   f"{author_label(s.user_id, s.origin, people)} [{s.origin}]")
    if at is not None:
        if not log or at < log[0].id:
            raise click.ClickException("No update that early.")
        click.echo(history.text_as_of(log, at))


commands: list[click.Command] = [clause_history_command]
