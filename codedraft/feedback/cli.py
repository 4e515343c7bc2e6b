"""Commands of this feature; ``codedraft.cli.register`` adds every command in ``commands``."""
from __future__ import annotations

import click
from sqlalchemy import select

from codedraft.codes.models import Code
from codedraft.drafts.models import Draft
from codedraft.extensions import db


@click.command("feedback-carry")
@click.argument("slug")
@click.argument("from_number", type=int)
@click.argument("to_number", type=int)
def carry_command(slug: str, from_number: int, to_number: int) -> None:
    """Carry the open comments of draft FROM_NUMBER of code SLUG to draft TO_NUMBER."""
    from codedraft.feedback.operations import carry_comments_forward

    code = db.session.scalar(select(Code).where(Code.slug == slug))
    if code is None:
        raise click.ClickException(f"No code {slug!r}.")
    drafts = {d.number: d for d in db.session.scalars(select(Draft).where(Draft.code_id == code.id))}
    if from_number not in drafts or to_number not in drafts:
        raise click.ClickException("Both drafts must exist.")
    report = carry_comments_forward(code, drafts[from_number], drafts[to_number])
    db.session.commit()
    click.echo(report.summary())


@click.command("feedback-rerender")
def rerender_command() -> None:
    """Render every comment and reply again (after a change to the Markdown renderer)."""
    from codedraft.feedback.operations import rerender_bodies

    count = rerender_bodies()
    db.session.commit()
    click.echo(f"Rendered {count} comments and replies.")


@click.command("mail-digest")
def mail_digest_command() -> None:
    """Mail the daily digest of unread notifications to everyone who chose it (run once a day)."""
    from codedraft.notifications.operations import send_daily_digests

    report = send_daily_digests()
    click.echo(f"Sent {report.sent} digests." + (f" Failed: {', '.join(report.failed)}." if report.failed else ""))


commands: list[click.Command] = [carry_command, rerender_command, mail_digest_command]
