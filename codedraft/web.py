"""Wiring of the web application: extensions, request hooks, blueprints, commands."""
from __future__ import annotations

from typing import Any

from flask import Flask, current_app, g, has_request_context, render_template, request, session
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import AnonymousUserMixin
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DataError, IntegrityError

from codedraft import database  # noqa: F401  (registers the SQLite pragmas)
from codedraft.concurrency import socketio_async_mode
from codedraft.database import TextNotStorable, TextTooLong
from codedraft.extensions import babel, csrf, db, limiter, login_manager, socketio
from codedraft.scaleout.keys import key_prefix
from codedraft.security import (
    RememberingCookieSessionInterface,
    install_input_limits,
    install_security_headers,
)

LOGIN_SESSION_KEY = "login_session"
# Websockets one gevent worker holds unless CODEDRAFT_CONNECTIONS says otherwise (gunicorn.conf.py's
# worker_connections has the same default).
MAX_CONNECTIONS = 4000


def select_locale() -> str | None:
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():
        return languages[0]  # a command or a background job: the source language
    # A language in the address (a shared public page's links) wins, then the one chosen here.
    chosen = request.args.get("lang") or session.get("lang")
    if chosen in languages:
        return str(chosen)
    return request.accept_languages.best_match(languages) or languages[0]


def init_extensions(app: Flask) -> None:
    install_input_limits(app)
    db.init_app(app)
    # Flask-Migrate is installed by what migrates (codedraft.cli.install_migrations), not here.
    csrf.init_app(app)
    from codedraft import i18n

    # The interface speaks every language it has a catalogue for.
    app.config.setdefault("LANGUAGES", i18n.interface_languages())
    babel.init_app(app, locale_selector=select_locale)
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"] or "memory://")
    app.config.setdefault("RATELIMIT_KEY_PREFIX", key_prefix(app.config))
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "accounts.login"
    login_manager.login_message = None
    login_manager.session_protection = None  # the login-session row does this job, and ends sockets too
    login_manager.anonymous_user = AnonymousUserMixin
    socketio.init_app(
        app,
        async_mode=socketio_async_mode(app.config.get("SOCKETIO_ASYNC_MODE")),
        message_queue=app.config["REDIS_URL"],
        channel=f"{key_prefix(app.config)}:socketio",
        # Same-origin only (SECURITY-CASES 7): never '*'.
        cors_allowed_origins=app.config.get("SOCKETIO_ALLOWED_ORIGINS"),
        # Only namespaces with handlers (/collab) are joined: python-socketio otherwise accepts
        # the default one, "/", from anybody, session or not, and holds a slot for nothing.
        namespaces=["/collab"],
        max_http_buffer_size=app.config.get("SOCKET_MAX_MESSAGE_BYTES", 2 * 1024 * 1024),
        # One socket's messages are handled in order, in its own connection thread: an edit is
        # never overtaken by the next one from the same editor, and acks keep that order.
        async_handlers=False,
        # Engine.IO's own defaults unless configured.
        **{option: app.config[key] for option, key in (("ping_timeout", "SOCKET_PING_TIMEOUT_SECONDS"),
                                                       ("ping_interval", "SOCKET_PING_INTERVAL_SECONDS"))
           if app.config.get(key)},
    )
    from codedraft.websocket import install as install_websocket

    # Ours under gevent; under threads simple-websocket, checked. As many websockets in greenlets of
    # their own as gunicorn's worker would hold connections (gunicorn.conf.py: worker_connections).
    install_websocket(socketio.server, own_greenlets=app.config.get("SOCKET_MAX_CONNECTIONS", MAX_CONNECTIONS))
    install_security_headers(app)
    from codedraft import entry

    # One entry in front: the transport straight to Socket.IO; a cookieless visitor's cached
    # public page answered before Flask runs; everything else to Flask.
    entry.install(app)
    app.session_interface = RememberingCookieSessionInterface()
    _install_user_loader()
    _install_error_pages(app)
    app.jinja_env.globals["get_locale"] = get_locale
    app.jinja_env.globals["interface_languages"] = lambda: [(code, i18n.language_name(code))
                                                            for code in app.config["LANGUAGES"]]
    app.jinja_env.globals["script_catalogue"] = i18n.script_catalogue
    from codedraft import labels

    labels.install(app)


def _install_user_loader() -> None:
    from codedraft.accounts.operations import live_login_session

    @login_manager.user_loader
    def load_user(user_id: str) -> Any:
        login = live_login_session(session.get(LOGIN_SESSION_KEY))
        if login is None or str(login.user_id) != user_id:
            return None
        g.login_session = login
        return login.user


def _install_error_pages(app: Flask) -> None:
    def page(status: int, title: str, message: str) -> tuple[str, int]:
        if request.path.startswith("/api/"):
            return {"error": message}, status  # type: ignore[return-value]
        return render_template("error.html", title=title, message=message, status=status), status

    @app.errorhandler(CSRFError)
    def csrf_error(_error: CSRFError) -> tuple[str, int]:
        app.logger.warning("CSRF refused: %s", _error.description)
        return page(403, _("Form expired"), _("The form was not accepted. Reload the page and try again."))

    @app.errorhandler(400)
    def bad_request(error: Exception) -> tuple[str, int]:
        # A refused input names what was wrong (InputRejected and Werkzeug's own descriptions).
        description = getattr(error, "description", None) or _("The request could not be understood.")
        return page(400, _("Bad request"), str(description))

    def refused_write(status: int, title: str, message: str) -> tuple[str, int]:
        """A write the database refused (or would have): the session is rolled back first, so the
        page (which reads the signed-in user) and the person's next request find it usable."""
        db.session.rollback()
        return page(status, title, message)

    @app.errorhandler(TextTooLong)
    def too_long(error: TextTooLong) -> tuple[str, int]:
        return refused_write(400, _("Bad request"), _("The field '%(field)s' is longer than %(limit)s characters.",
                                                      field=error.field, limit=error.limit))

    @app.errorhandler(TextNotStorable)
    def not_storable(error: TextNotStorable) -> tuple[str, int]:
        return refused_write(400, _("Bad request"), _("The field '%(field)s' holds a character that cannot be "
                                                      "stored (such as NUL).", field=error.field))

    @app.errorhandler(DataError)
    def unreadable_value(error: DataError) -> tuple[str, int]:
        # The last line of defence for a value the database refuses to read, in a lookup as in a
        # write (PostgreSQL: a NUL in a query string's code slug): the request is at fault.
        app.logger.warning("the database refused a value of the request: %s", error.orig)
        return refused_write(400, _("Bad request"), _("A value in the request cannot be stored or looked up "
                                                      "(such as a NUL character)."))

    @app.errorhandler(IntegrityError)
    def conflict(error: IntegrityError) -> tuple[str, int]:
        # The last line of defence for a uniqueness the operation did not check first (two people
        # adding the same name at once): nothing was saved, and the person is told so.
        app.logger.warning("a write conflicted with stored data: %s", error.orig)
        return refused_write(409, _("Conflict"), _("That clashes with something that already exists, so "
                                                   "nothing was saved. Reload the page and try again."))

    @app.errorhandler(OverflowError)
    def out_of_range(_error: OverflowError) -> tuple[str, int]:
        # The last line of defence: the input limits should refuse such a number before here.
        app.logger.warning("a number out of range reached the database: %s", _error)
        return page(400, _("Bad request"), _("A number in the request is out of range."))

    @app.errorhandler(403)
    def forbidden(_error: Exception) -> tuple[str, int]:
        return page(403, _("Not allowed"), _("You are not allowed to do that."))

    @app.errorhandler(404)
    def not_found(_error: Exception) -> tuple[str, int]:
        return page(404, _("Not found"), _("There is nothing here, or you may not see it."))

    @app.errorhandler(429)
    def too_many(error: Exception) -> Any:
        body, status = page(429, _("Slow down"), _("Too many attempts. Please wait a moment and try again."))
        return body, status

    @app.errorhandler(500)
    def server_error(_error: Exception) -> tuple[str, int]:
        # The page reads the signed-in user: after a failed write the session must be usable
        # again first, or the error page itself failed and Werkzeug's bare one was sent.
        db.session.rollback()
        return page(500, _("Something went wrong"), _("The error was logged. Nothing you saved was lost."))


def register_blueprints(app: Flask) -> None:
    from codedraft.accounts.views import bp as accounts_bp
    from codedraft.api.views import bp as api_bp
    from codedraft.audit.views import bp as audit_bp
    from codedraft.codes.views import bp as codes_bp
    from codedraft.collab.views import bp as collab_bp
    from codedraft.drafts.views import bp as drafts_bp
    from codedraft.exports.views import bp as exports_bp
    from codedraft.feedback import triage_views  # noqa: F401  (the round's triage routes, on the same blueprint)
    from codedraft.feedback.views import bp as feedback_bp
    from codedraft.importer.views import bp as importer_bp
    from codedraft.notifications.views import bp as notifications_bp
    from codedraft.public.views import bp as public_bp
    from codedraft.registration.views import bp as registration_bp
    from codedraft.search.views import bp as search_bp

    for blueprint in (accounts_bp, codes_bp, drafts_bp, collab_bp, feedback_bp, search_bp, exports_bp, importer_bp,
                      api_bp, audit_bp, public_bp, registration_bp, notifications_bp):
        app.register_blueprint(blueprint)
    csrf.exempt(api_bp)  # the API authenticates with bearer tokens only, never cookies
    from codedraft.accounts import oidc

    oidc.install(app)  # sign-in with an identity provider, when one is configured


def register_realtime(app: Flask) -> None:
    from codedraft.collab import namespace
    from codedraft.collab.store import ClauseStore

    store = ClauseStore(app, feed=_clause_feed(app))
    app.extensions["codedraft_collab"] = store
    namespace.install(app, store)
    from codedraft import collab, exports, feedback, search

    for feature in (collab, feedback, search, exports):
        feature.install(app)


def _clause_feed(app: Flask) -> Any:
    """How this process hears the edits other processes store: a Redis stream per clause when
    processes share ``REDIS_URL``, none for one process (codedraft/collab/feed.py)."""
    if not app.config.get("REDIS_URL") or app.config.get("COLLAB_ROUTE_URLS"):
        return None  # one process, or each clause on its owner only (codedraft/scaleout/routing.py)
    from codedraft.scaleout.clause_stream import RedisClauseFeed

    return RedisClauseFeed(app.config["REDIS_URL"], key_prefix(app.config))


def register_commands(app: Flask) -> None:
    from codedraft.cli import register

    register(app)
