"""Interface languages, and the words the browser's scripts show, in the reader's language.

The interface languages are the catalogues under ``codedraft/translations`` plus English, the
language of the source: adding a language is adding its catalogue and nothing else.

The scripts under ``static/src`` call ``gettext``/``ngettext`` like the Python code does; their
messages are found once, the way ``pybabel extract`` finds them, and each page carries their
translations for its language as a JSON data block (never an inline script: the CSP allows
none). Plural messages carry one translation per CLDR plural category of the language, which
the browser picks with ``Intl.PluralRules``.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel.messages.extract import DEFAULT_KEYWORDS, extract
from flask_babel import get_locale, get_translations

PACKAGE = Path(__file__).resolve().parent
SCRIPTS = PACKAGE.parent / "static" / "src"
SOURCE_LANGUAGE = "en"


def interface_languages(translations: Path = PACKAGE / "translations") -> tuple[str, ...]:
    """English first, then every language with a catalogue, by code."""
    found = sorted(p.parent.parent.name for p in translations.glob("*/LC_MESSAGES/messages.po"))
    return (SOURCE_LANGUAGE, *[code for code in found if code != SOURCE_LANGUAGE])


def language_name(code: str) -> str:
    """The language's own name for itself ("Polski"), as a language menu shows it."""
    name = Locale.parse(code).get_display_name(code) or code
    return name[:1].upper() + name[1:]


@lru_cache(maxsize=1)
def script_messages() -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The scripts' messages: (singular msgids, (singular, plural) pairs), found once."""
    singles: dict[str, None] = {}
    plurals: dict[tuple[str, str], None] = {}
    for path in sorted(SCRIPTS.rglob("*.js")):
        with path.open("rb") as source:
            for _line, message, _comments, _context in extract("javascript", source, keywords=DEFAULT_KEYWORDS):
                if isinstance(message, tuple):
                    plurals[(message[0], message[1])] = None
                else:
                    singles[message] = None
    return tuple(singles), tuple(plurals)


def _plural_samples(language: str) -> dict[str, int]:
    """One number in each plural category of the language ("one": 1, "few": 2, "many": 5...)."""
    rule = Locale.parse(language).plural_form
    samples: dict[str, int] = {}
    for number in range(0, 200):
        samples.setdefault(rule(number), number)
    return samples


@lru_cache(maxsize=16)
def _catalogue(language: str, translations: Any) -> dict[str, Any]:
    singles, plurals = script_messages()
    samples = _plural_samples(language)
    return {
        "language": language,
        "messages": {msgid: translations.ugettext(msgid) for msgid in singles},
        "plurals": {singular: {category: translations.ungettext(singular, plural, number)
                               for category, number in samples.items()}
                    for singular, plural in plurals},
    }


def script_catalogue() -> dict[str, Any]:
    """The scripts' messages translated into the current request's language."""
    return _catalogue(str(get_locale() or SOURCE_LANGUAGE), get_translations())
