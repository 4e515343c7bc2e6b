"""Settings read from the environment."""
from __future__ import annotations

from pathlib import Path

import pytest

from codedraft import create_app
from codedraft.collab.store import IDLE_SECONDS
from codedraft.config import from_environment
from tests.conftest import app_config


def test_the_idle_sweep_is_set_from_the_environment_and_reaches_the_namespace(monkeypatch, tmp_path):
    monkeypatch.setenv("CODEDRAFT_IDLE_SECONDS", "7.5")
    monkeypatch.setenv("CODEDRAFT_SWEEP_SECONDS", "2")
    assert from_environment(tmp_path)["COLLAB_IDLE_SECONDS"] == 7.5
    app = create_app(app_config(tmp_path))
    namespace = app.extensions["codedraft_collab_namespace"]
    assert (namespace.idle_seconds, namespace.sweep_every) == (7.5, 2.0)


def test_without_the_variables_the_code_defaults_apply(monkeypatch, tmp_path):
    monkeypatch.delenv("CODEDRAFT_IDLE_SECONDS", raising=False)
    monkeypatch.delenv("CODEDRAFT_SWEEP_SECONDS", raising=False)
    assert "COLLAB_IDLE_SECONDS" not in from_environment(tmp_path)
    app = create_app(app_config(tmp_path))
    assert app.extensions["codedraft_collab_namespace"].idle_seconds == IDLE_SECONDS


def test_a_setting_that_is_not_a_number_says_which_and_why(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("CODEDRAFT_IDLE_SECONDS", "two minutes")
    with pytest.raises(ValueError, match="CODEDRAFT_IDLE_SECONDS must be a number of seconds, not 'two minutes'"):
        from_environment(tmp_path)


def test_the_connections_per_account_are_set_from_the_environment(monkeypatch, tmp_path: Path):
    from codedraft.collab.namespace import SOCKETS_PER_ACCOUNT

    assert create_app(app_config(tmp_path)).extensions["codedraft_collab_namespace"].sockets_per_account \
        == SOCKETS_PER_ACCOUNT
    monkeypatch.setenv("CODEDRAFT_SOCKETS_PER_ACCOUNT", "40")
    app = create_app(app_config(tmp_path))
    assert app.extensions["codedraft_collab_namespace"].sockets_per_account == 40
    for wrong in ("0", "²", "lots", "-3"):
        monkeypatch.setenv("CODEDRAFT_SOCKETS_PER_ACCOUNT", wrong)
        with pytest.raises(ValueError, match="CODEDRAFT_SOCKETS_PER_ACCOUNT must be a whole number above 0"):
            from_environment(tmp_path)
