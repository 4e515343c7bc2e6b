"""Thin command-line wrappers: each command parses options and calls an operation."""
from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy import select

from codedraft.extensions import db


def _app_factory() -> Flask:
    from codedraft import create_app

    app = create_app()
    install_migrations(app)
    return app


def install_migrations(app: Flask) -> None:
    """Make ``app``'s migrations runnable: Flask-Migrate's settings and its ``db`` commands.

    The command line and the scripts and tests that migrate call this; ``create_app`` does not,
    because Flask-Migrate brings Alembic, Mako and Pygments, 11 MB of every serving process."""
    from flask_migrate import Migrate

    from codedraft import PROJECT_ROOT

    Migrate(app, db, directory=str(PROJECT_ROOT / "migrations"), render_as_batch=True)


@click.group(cls=FlaskGroup, create_app=_app_factory, add_default_commands=True)
def main() -> None:
    """CodeDraft administration."""


def _code_by_slug(slug: str):  # type: ignore[no-untyped-def]
    from codedraft.codes.models import Code

    code = db.session.scalar(select(Code).where(Code.slug == slug))
    if code is None:
        raise click.ClickException(f"No code with slug {slug!r}.")
    return code


@click.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Create the demo code and its people, once; prints the demo logins."""
    from codedraft.demo import DEMO_PASSWORD, seed_demo

    created = seed_demo()
    db.session.commit()
    click.echo("Demo data " + ("created." if created else "already present."))
    click.echo(f"Demo logins (password for all: {DEMO_PASSWORD}):")
    from codedraft.demo import DEMO_PEOPLE

    for email, name, role, _org in DEMO_PEOPLE:
        click.echo(f"  {role:<9} {email:<28} {name}")


@click.command("create-user")
@click.argument("email")
@click.argument("name")
@click.option("--office", is_flag=True, help="Member of the Office (administers every code).")
@click.password_option()
@with_appcontext
def create_user_command(email: str, name: str, office: bool, password: str) -> None:
    """Create an account."""
    from codedraft.accounts.operations import AccountError, create_user

    try:
        create_user(email, name, password, is_office=office)
    except AccountError as error:
        raise click.ClickException(str(error)) from error
    db.session.commit()
    click.echo(f"Created {email}.")


@click.command("invite")
@click.argument("email")
@click.option("--name", default="", help="The person's name.")
@click.option("--code", "slug", required=True, help="Slug of the code to join.")
@click.option("--role", type=click.Choice(["admin", "chair", "member", "reviewer", "observer"]), default="reviewer")
@with_appcontext
def invite_command(email: str, name: str, slug: str, role: str) -> None:
    """Print a one-time invitation link, and mail it when SMTP_URL is set."""
    from codedraft.accounts.operations import invite
    from codedraft.codes.models import Role

    code = _code_by_slug(slug)
    from codedraft.mail.operations import send_invitation_mail

    _invitation, token = invite(email, name or email, code=code, role=Role[role])
    db.session.commit()
    base = current_app.config["CODEDRAFT_BASE_URL"].rstrip("/")
    link = f"{base}/invite/{token}"
    if send_invitation_mail(email, name or email, link, code_title=code.title):
        click.echo(f"Mailed to {email}.", err=True)
    click.echo(link)


@click.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--code", "slug", default=None, help="Import as a new draft of this existing code.")
@click.option("--draft-name", default=None, help="Publish the imported text as a draft with this name.")
@with_appcontext
def import_command(path: Path, slug: str | None, draft_name: str | None) -> None:
    """Import a Markdown (.md) or Word (.docx) document as a code, or as the next version of one."""
    from codedraft.importer.operations import import_document

    text = read_source(path)
    code = _code_by_slug(slug) if slug else None
    with click.progressbar(length=100, label="Importing", file=sys.stderr) as bar:
        last = [0]

        def progress(done: int, total: int) -> None:
            percent = int(100 * done / max(total, 1))
            bar.update(percent - last[0])
            last[0] = percent

        report = import_document(text, code=code, draft_name=draft_name, progress=progress)
    db.session.commit()
    click.echo(report.summary())


def read_source(path: Path) -> str:
    """Markdown as it is; a Word file converted to Markdown first (by the exports feature)."""
    if path.suffix.lower() == ".docx":
        from codedraft.exports.docx_import import read_document

        return read_document(path)
    return path.read_text(encoding="utf-8")


@click.group("token")
def token_group() -> None:
    """Personal access tokens for the API: create, list, revoke."""


@token_group.command("create")
@click.argument("email")
@click.option("--name", default="cli", help="A label for the token.")
@click.option("--expires-in-days", type=click.IntRange(1, 3650), default=None,
              help="Refuse the token after this many days (default: until revoked).")
@with_appcontext
def token_create_command(email: str, name: str, expires_in_days: int | None) -> None:
    """Create a token for EMAIL and print it once."""
    from codedraft.accounts.operations import create_api_token

    _token, secret = create_api_token(_account(email), name, expires_in_days=expires_in_days)
    db.session.commit()
    click.echo(secret)


@token_group.command("list")
@click.argument("email")
@with_appcontext
def token_list_command(email: str) -> None:
    """List EMAIL's tokens: id, label, created, last used, expiry, state."""
    from codedraft.accounts.operations import tokens_of

    def when(moment: Any) -> str:
        return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"

    for token in tokens_of(_account(email)):
        state = "revoked" if token.revoked_at else ("active" if token.usable else "expired")
        click.echo(f"{token.id}\t{token.name}\tcreated {when(token.created_at)}\tlast used {when(token.last_used_at)}"
                   f"\texpires {when(token.expires_at)}\t{state}")


@token_group.command("revoke")
@click.argument("email")
@click.argument("token_id", type=click.IntRange(1, 2**31 - 1))
@with_appcontext
def token_revoke_command(email: str, token_id: int) -> None:
    """Revoke EMAIL's token TOKEN_ID (see `token list`); it is refused from the next request on."""
    from codedraft.accounts.operations import AccountError, revoke_api_token

    try:
        revoke_api_token(_account(email), token_id)
    except AccountError as error:
        raise click.ClickException(str(error)) from error
    db.session.commit()
    click.echo(f"Revoked token {token_id}.")


@click.command("reset-password")
@click.argument("email")
@click.password_option()
@with_appcontext
def reset_password_command(email: str, password: str) -> None:
    """Set EMAIL's password; every login session, socket and API token of the account ends."""
    from codedraft.accounts.operations import AccountError, reset_password
    from codedraft.realtime_hooks import login_session_ended

    try:
        ended = reset_password(_account(email), password, by=None)
    except AccountError as error:
        raise click.ClickException(str(error)) from error
    db.session.commit()
    for login_session in ended:
        login_session_ended(login_session)
    click.echo(f"Password set; {len(ended)} session(s) ended.")


def _account(email: str) -> Any:
    from codedraft.accounts.operations import find_user_by_email

    user = find_user_by_email(email)
    if user is None:
        raise click.ClickException("No such account.")
    return user


@click.command("serve")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
@with_appcontext
def serve_command(host: str, port: int) -> None:
    """Serve HTTP and websockets (threading server with TCP_NODELAY)."""
    from codedraft.server import serve

    serve(current_app._get_current_object(), host=host, port=port)  # type: ignore[attr-defined]


def ensure_secret_key_file(instance: Path) -> str:
    """Used by `make run`: a stable random key kept in the instance folder."""
    instance.mkdir(parents=True, exist_ok=True)
    key_file = instance / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def register(app: Flask) -> None:
    from codedraft.collab.cli import commands as collab_commands
    from codedraft.exports.cli import commands as export_commands
    from codedraft.feedback.cli import commands as feedback_commands
    from codedraft.search.cli import commands as search_commands

    for command in (seed_demo_command, create_user_command, invite_command, import_command, token_group,
                    reset_password_command,
                    serve_command, *collab_commands, *feedback_commands, *search_commands, *export_commands):
        app.cli.add_command(command)
