"""Sending mail through a real SMTP server; the server comes from ``app.config["SMTP_URL"]``."""
from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

#: Seconds to wait on the SMTP server: a slow server must not hold a request for long.
SMTP_TIMEOUT = 10


class MailError(RuntimeError):
    """The message could not be handed to the SMTP server."""


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    tls: bool  # TLS from the first byte (smtps://)
    starttls: bool
    username: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        """``smtp://[user:password@]host[:port][?starttls=1]`` or ``smtps://...``.

        Raises MailError for another scheme or a missing host."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise MailError("SMTP_URL must look like smtp://host:port or smtps://user:password@host:port.")
        tls = parts.scheme == "smtps"
        options = parse_qs(parts.query)
        return cls(host=parts.hostname, port=parts.port or (465 if tls else 25), tls=tls,
                   starttls=options.get("starttls", ["0"])[0] in ("1", "true", "yes"),
                   username=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None)


def mail_enabled() -> bool:
    return bool(current_app.config.get("SMTP_URL"))


def compose(to: str, subject: str, text: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = current_app.config.get("MAIL_FROM") or "CodeDraft <codedraft@localhost>"
    message["To"] = to
    # A header must be one line: a subject built from user text must not add headers.
    message["Subject"] = " ".join(subject.split())[:200]
    message["Message-ID"] = make_msgid(domain="codedraft")
    message.set_content(text)
    return message


def send_mail(to: str, subject: str, text: str) -> bool:
    """Send one plain-text message now. False when mail is off; raises MailError when the
    server refuses it or cannot be reached."""
    url = current_app.config.get("SMTP_URL")
    if not url:
        return False
    server = SmtpServer.from_url(url)
    message = compose(to, subject, text)
    try:
        with _connect(server) as smtp:
            if server.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if server.username:
                smtp.login(server.username, server.password or "")
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as error:
        raise MailError(f"The mail to {to} could not be sent: {error}") from error
    return True


def _connect(server: SmtpServer) -> Any:
    if server.tls:
        return smtplib.SMTP_SSL(server.host, server.port, timeout=SMTP_TIMEOUT,
                                context=ssl.create_default_context())
    return smtplib.SMTP(server.host, server.port, timeout=SMTP_TIMEOUT)


def send_invitation_mail(email: str, name: str, link: str, *, code_title: str = "", days: int = 14) -> bool:
    """Mail an invitation link; True if it was sent, False when mail is off (the Office then
    passes on the printed link as before). A failed send is logged, never raised: the
    invitation itself is valid and its link is still shown."""
    # The invitee has no language yet: the site's default one.
    with force_locale(current_app.config.get("BABEL_DEFAULT_LOCALE", "en")):
        subject = (_("Your invitation to %(code)s on CodeDraft", code=code_title) if code_title
                   else _("Your invitation to CodeDraft"))
        # An existing account is never given a password by this link: its owner signs in first.
        text = _("Hello %(name)s,\n\nYou are invited to %(where)s. Open this link to join: you choose a "
                 "password, or sign in first if you already have an account.\n\n%(link)s\n\nThe link "
                 "works once and expires in %(days)d days.\n",
                 name=name, where=code_title or "CodeDraft", link=link, days=days)
    try:
        return send_mail(email, subject, text)
    except MailError:
        current_app.logger.exception("invitation mail to %s failed", email)
        return False
