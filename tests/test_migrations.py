"""The migrations build exactly the schema the models declare."""
from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

from codedraft import create_app
from codedraft.extensions import db
from tests.conftest import app_config


def test_upgrade_from_empty_matches_models(tmp_path: Path):
    app = create_app(app_config(tmp_path))
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True, "render_as_batch": True})
            differences = compare_metadata(context, db.metadata)
        assert differences == []
        mode = db.session.execute(db.text("PRAGMA journal_mode")).scalar()
        synchronous = db.session.execute(db.text("PRAGMA synchronous")).scalar()
        foreign_keys = db.session.execute(db.text("PRAGMA foreign_keys")).scalar()
        assert (mode, synchronous, foreign_keys) == ("wal", 2, 1)  # 2 = FULL
        db.engine.dispose()
