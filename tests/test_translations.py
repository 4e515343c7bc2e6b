"""Every interface string is in every catalogue: a string added to a template, to Python or to a
script without its translations fails here. Extraction is pybabel's own, into a temporary .pot,
exactly as a translator would run it."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from codedraft.i18n import interface_languages

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "codedraft" / "translations"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> list:
    pot = tmp_path_factory.mktemp("pot") / "messages.pot"
    # Lazy strings (module-level labels) are marked with _l or lazy_gettext: extracted too.
    subprocess.run([str(Path(sys.executable).parent / "pybabel"), "extract", "-F", "babel.cfg", "-k", "_l",
                    "-k", "lazy_gettext",
                    "-o", str(pot), "."], cwd=ROOT, check=True, capture_output=True)
    return [message for message in _read(pot) if message.id]


def _read(path: Path):
    with path.open("rb") as source:
        return read_po(source)


def test_the_extraction_sees_python_templates_and_scripts(template: list):
    places = {path.split("/")[0] for message in template for path, _line in message.locations}
    assert {"codedraft", "templates", "static"} <= places
    ids = {message.id if isinstance(message.id, str) else message.id[0] for message in template}
    assert {"%(name)s (you)", "Saved", "partly accepted", "Civil society", "Commitment"} <= ids


@pytest.mark.parametrize("language", interface_languages())
def test_every_string_is_in_the_catalogue(template: list, language: str):
    catalogue = _read(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po")
    missing = [message.id for message in template if message.id not in catalogue]
    assert missing == [], f"{language}: {len(missing)} strings are not in the catalogue"
    if language == "en":
        return  # the source language: an empty msgstr means "as written"
    untranslated = []
    for message in template:
        entry = catalogue[message.id]
        forms = entry.string if isinstance(entry.string, (tuple, list)) else (entry.string,)
        if not all(forms):
            untranslated.append(message.id)
            continue
        wanted = set(PLACEHOLDER.findall(message.id if isinstance(message.id, str) else message.id[-1]))
        for form in forms:
            assert set(PLACEHOLDER.findall(form)) <= wanted | {"num"}, (language, message.id, form)
    assert untranslated == [], f"{language}: {len(untranslated)} strings are not translated"


def test_a_language_is_its_catalogue(tmp_path: Path):
    """The interface's languages come from the catalogues present, nothing else."""
    (tmp_path / "de" / "LC_MESSAGES").mkdir(parents=True)
    (tmp_path / "de" / "LC_MESSAGES" / "messages.po").write_text('msgid ""\nmsgstr ""\n')
    assert interface_languages(tmp_path) == ("en", "de")
    assert interface_languages() == ("en", "pl")


def test_pages_carry_the_scripts_words_in_the_readers_language(client):
    import json

    page = client.get("/login", headers={"Accept-Language": "pl"}).get_data(as_text=True)
    block = re.search(r'<script type="application/json" id="script-messages">(.*?)</script>', page, re.S)
    assert block is not None
    catalogue = json.loads(block.group(1))
    assert catalogue["language"] == "pl"
    assert catalogue["messages"]["%(name)s (you)"] == "%(name)s (ty)"
    assert catalogue["messages"]["Saved"] == "Zapisano"
    assert catalogue["plurals"]["%(num)s change"] == {
        "one": "%(num)s zmiana", "few": "%(num)s zmiany", "many": "%(num)s zmian"}
    english = client.get("/login", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '"Saved": "Saved"' in english or '"Saved":"Saved"' in english


@pytest.mark.parametrize("language", interface_languages())
def test_the_catalogue_is_well_formed(language: str, tmp_path: Path):
    """Catalogues are merged line by line when branches meet: no entry may lose its msgstr or
    appear twice (a duplicate msgid silently takes the last translation)."""
    path = TRANSLATIONS / language / "LC_MESSAGES" / "messages.po"
    text = path.read_text(encoding="utf-8")
    ids = re.findall(r'^(?:msgctxt "(.*)"\n)?msgid "(.+)"$', text, flags=re.M)
    duplicates = sorted({entry for entry in ids if ids.count(entry) > 1})
    assert duplicates == [], f"{language}: entries given twice: {duplicates}"
    compiled = subprocess.run([str(Path(sys.executable).parent / "pybabel"), "compile", "-i", str(path),
                               "-o", str(tmp_path / "messages.mo"), "-l", language],
                              capture_output=True, text=True, check=True)
    assert "WARNING" not in compiled.stdout + compiled.stderr, compiled.stdout + compiled.stderr
