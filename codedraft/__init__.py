"""CodeDraft: drafting a code of practice together.

:func:`create_app` wires configuration, extensions, blueprints, socket namespaces and
commands. It performs no I/O: the database is created by commands, not at import.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from codedraft import config as config_module

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    from codedraft.security import GuardedFlask

    app = GuardedFlask(
        __name__,
        static_folder=str(PROJECT_ROOT / "static"),
        template_folder=str(PROJECT_ROOT / "templates"),
        instance_path=str(PROJECT_ROOT / "instance"),
        instance_relative_config=True,
    )
    app.config.update(config_module.DEFAULTS)
    app.config.update(config_module.from_environment(Path(app.instance_path)))
    if overrides:
        app.config.update(overrides)
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS",
                          config_module.engine_options(app.config["SQLALCHEMY_DATABASE_URI"]))
    if not app.config.get("SECRET_KEY"):
        raise RuntimeError("SECRET_KEY is not set: export SECRET_KEY (make run writes one to instance/secret_key).")

    from codedraft import web

    web.init_extensions(app)
    web.register_blueprints(app)
    web.register_realtime(app)
    web.register_commands(app)
    return app
