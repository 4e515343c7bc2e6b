"""Extensions, created unbound and attached in :func:`codedraft.create_app`."""
from __future__ import annotations

from flask_babel import Babel
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.orm import DeclarativeBase

from codedraft.database import check_string_lengths

# Named constraints keep Alembic migrations reviewable and SQLite batch mode working.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)
# Every model refuses over-long strings on both databases alike (codedraft.database).
event.listen(db.Model, "before_insert", check_string_lengths, propagate=True)
event.listen(db.Model, "before_update", check_string_lengths, propagate=True)
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
socketio = SocketIO()


def _client_address() -> str:
    from flask import request

    return request.remote_addr or "unknown"


# Storage is chosen in create_app: memory on one process, Redis when scaled out.
limiter = Limiter(key_func=_client_address, default_limits=[], headers_enabled=True)
