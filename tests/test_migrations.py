"""The migrations build exactly the schema the models declare."""
from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

from codedraft import create_app
from codedraft.cli import install_migrations
from codedraft.extensions import db
from tests.conftest import app_config


def test_upgrade_from_empty_matches_models(tmp_path: Path):
    app = create_app(app_config(tmp_path))
    install_migrations(app)
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


def test_existing_notifications_get_message_keys_or_keep_their_text(tmp_path: Path):
    """c20d4e5f6a7b: sentences the application wrote get a key and parameters; others keep none."""
    import json

    from codedraft.notifications import messages as said

    app = create_app(app_config(tmp_path))
    install_migrations(app)
    with app.app_context():
        upgrade(revision="9b3e6c41d2a7")
        run = db.session.execute
        run(db.text("INSERT INTO users (id, email, name, is_office, is_active_account, created_at) "
                    "VALUES (1, 'a@example.eu', 'A', 0, 1, '2026-01-01')"))
        rows = {1: "Bea replied to your comment.", 2: "Your comment on 1.2 Scope was partly accepted: See 1.3.",
                3: "Your comment was hidden by the Office: Off topic.", 4: "Something an operator wrote.",
                5: "The responses to Round <1> are published."}
        for note_id, message in rows.items():
            run(db.text("INSERT INTO notifications (id, user_id, message, link, created_at, kind, comment_count, "
                        "amendment_count, updated_at) VALUES (:id, 1, :m, '', '2026-01-01', 'message', 0, 0, "
                        "'2026-01-01')"), {"id": note_id, "m": message})
        db.session.commit()
        upgrade()
        found = {row[0]: (row[1], json.loads(row[2]) if row[2] else None) for row in
                 run(db.text("SELECT id, message_key, message_params FROM notifications"))}
        assert found[1] == (said.REPLIED, {"author": "Bea"})
        assert found[2] == (said.DISPOSED,
                            {"clause": "1.2 Scope", "disposition": "partly_accepted", "reason": "See 1.3."})
        assert found[3] == (said.HIDDEN, {"reason": "Off topic."})
        assert found[4] == (None, None)
        assert found[5] == (said.RESPONSES_PUBLISHED, {"round": "Round <1>"})
        db.engine.dispose()
