"""A serving process reads the analysis data of its codes' languages, and only those, on a
background thread once it starts; the app factory reads none (search/prepare.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import simplemma
from flask import Flask

from codedraft import create_app
from codedraft.codes.models import Code
from codedraft.extensions import db
from codedraft.search import analysis, prepare
from tests.conftest import app_config


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The languages ``analysis.prepare_language`` is asked to prepare (nothing is read)."""
    languages: list[str] = []

    def record(language: str) -> bool:
        languages.append(language)
        return language in analysis.LEMMATISED_LANGUAGES

    monkeypatch.setattr(analysis, "prepare_language", record)
    return languages


def test_prepares_the_languages_of_the_codes_only(app: Flask, make_code: Callable[..., Code],
                                                   asked: list[str]) -> None:
    make_code("Kodeks", language="pl")
    make_code("Code A", language="en")
    make_code("Code B", language="EN")
    make_code("Kodex", language="de-AT")
    db.session.commit()
    assert prepare.prepare_search(app) == ["pl"]
    assert asked == ["de", "en", "pl"]


def test_english_codes_read_no_dictionary(app: Flask, make_code: Callable[..., Code], asked: list[str]) -> None:
    make_code("Code", language="en")
    db.session.commit()
    assert prepare.prepare_search(app) == []
    assert asked == ["en"]


def test_english_has_no_dictionary_to_read() -> None:
    assert analysis.prepare_language("en") is False
    assert analysis.prepare_language("fr") is False


def test_polish_dictionary_is_read_and_lemmas_follow(monkeypatch: pytest.MonkeyPatch) -> None:
    assert analysis.prepare_language("pl") is True
    assert analysis.dictionary_is_read("pl")
    assert not analysis.dictionary_is_read("en")
    # Once read, a word is lemmatised without reading again.
    monkeypatch.setattr(analysis, "_read_dictionary", lambda _dictionary: pytest.fail("read twice"))
    assert analysis.index_term.__wrapped__("zobowiązaniem", "pl") == "zobowiazanie"


def test_memory_frugal_dictionary_gives_the_same_lemmas() -> None:
    words = ["zobowiązaniem", "incydentów", "poważnych", "ryzyk", "systemowych", "przejrzystości", "Urzędu"]
    assert [simplemma.lemmatize(w.casefold(), lang="pl", low_memory=True) for w in words] == [
        "zobowiązanie", "incydent", "poważny", "ryzyko", "systemowy", "przejrzystość", "urząd"]


def test_a_broken_dictionary_is_logged_not_raised(app: Flask, make_code: Callable[..., Code],
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    make_code("Kodeks", language="pl")
    db.session.commit()

    def broken(_language: str) -> bool:
        raise OSError("unreadable")

    monkeypatch.setattr(analysis, "prepare_language", broken)
    assert prepare.prepare_search(app) == []
    assert "could not read the search analysis data" in caplog.text


def test_started_in_the_background_unless_turned_off(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[tuple[Any, ...]] = []
    monkeypatch.setattr(prepare, "start_in_background", lambda function, *args, name: started.append(args))
    assert prepare.prepare_search_in_background(app) is True
    assert started == [(app,)]
    app.config["SEARCH_PREPARE_ON_START"] = False
    assert prepare.prepare_search_in_background(app) is False
    assert len(started) == 1


def test_the_app_factory_prepares_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prepare, "start_in_background", lambda *_a, **_k: pytest.fail("started at create_app"))
    monkeypatch.setattr(analysis, "prepare_language", lambda _language: pytest.fail("prepared at create_app"))
    create_app(app_config(tmp_path))


def test_the_gunicorn_worker_starts_it(monkeypatch: pytest.MonkeyPatch, app: Flask) -> None:
    from codedraft.scaleout import gunicorn_hooks

    started: list[Flask] = []
    monkeypatch.setattr(prepare, "prepare_search_in_background", started.append)

    class Worker:
        wsgi = app

    gunicorn_hooks.post_worker_init(Worker())
    assert started == [app]
