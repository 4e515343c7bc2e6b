"""Safe file names for exports: download names, ``Content-Disposition`` and paths on disk.

A code's title is user text. It may hold ``../``, quotes, semicolons, CR/LF or any script
(SECURITY-CASES 26); none of that may reach a header or a path unchanged.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import quote

_SUFFIX_RE = re.compile(r"\.?[A-Za-z0-9]{1,10}")
# Keep letters, digits, marks and a few harmless punctuation marks; everything else separates.
_UNSAFE_RUN = re.compile(r"[^\w.()\-]+")
_DASHES = re.compile(r"-{2,}")
_DOTS = re.compile(r"\.{2,}")
_WINDOWS_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"COM{n}" for n in range(1, 10)),
    *(f"LPT{n}" for n in range(1, 10)),
}
MAX_STEM_LENGTH = 100
DEFAULT_STEM = "codedraft-export"


def _normalise_suffix(suffix: str) -> str:
    if not _SUFFIX_RE.fullmatch(suffix):
        raise ValueError(f"not a file suffix: {suffix!r}")
    return "." + suffix.lstrip(".").lower()


def _cut_at_word(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a separator, never inside a word (a
    single word longer than half the limit is the only thing cut)."""
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    cut = max(head.rfind("-"), head.rfind("."), head.rfind("_"), head.rfind("("), head.rfind(")"))
    return text[:cut] if cut > limit // 2 else text[:limit]


def export_title(code_title: str, what: str, *, limit: int = MAX_STEM_LENGTH) -> str:
    """The name of an export: the code's title, shortened at a word if need be, then what was
    exported ("changes draft 1 to draft 2"), which is always kept whole."""
    room = max(10, limit - len(what) - 3)
    title = " ".join(code_title.split())
    if len(title) > room:
        words, kept = title.split(" "), ""
        for word in words:
            if len(kept) + len(word) + (1 if kept else 0) > room:
                break
            kept = f"{kept} {word}" if kept else word
        title = kept or title[:room]
    return f"{title} - {what}"


def _clean_stem(title: str) -> str:
    text = unicodedata.normalize("NFC", title)
    # Control, format and separator characters (CR, LF, NUL, bidi overrides...) become spaces.
    text = "".join(" " if unicodedata.category(char)[0] in "CZ" else char for char in text)
    text = _UNSAFE_RUN.sub("-", text)
    text = _DOTS.sub(".", _DASHES.sub("-", text))
    text = _cut_at_word(text.strip(".-_ "), MAX_STEM_LENGTH).strip(".-_ ")
    if text.split(".")[0].upper() in _WINDOWS_RESERVED:
        text = "_" + text
    return text


def safe_download_name(title: str, suffix: str) -> str:
    """A file name for ``title`` with ``suffix`` (e.g. ``"pdf"`` or ``".pdf"``).

    The name has no path separator, no quote or semicolon, no control character, no leading dot
    and no ``..``; letters of any script are kept. Falls back to ``codedraft-export`` when
    nothing usable is left. Raises ValueError for a suffix that is not 1-10 ASCII letters/digits.
    """
    extension = _normalise_suffix(suffix)
    return (_clean_stem(title) or DEFAULT_STEM) + extension


def ascii_download_name(title: str, suffix: str) -> str:
    """The ASCII-only fallback of :func:`safe_download_name` (accents stripped, other scripts
    dropped), for the plain ``filename=`` parameter."""
    unicode_name = safe_download_name(title, suffix)
    stem, _, extension = unicode_name.rpartition(".")
    decomposed = unicodedata.normalize("NFKD", stem)
    ascii_stem = decomposed.encode("ascii", "ignore").decode("ascii")
    ascii_stem = _clean_stem(re.sub(r"[^A-Za-z0-9.()\-]+", "-", ascii_stem))
    return f"{ascii_stem or DEFAULT_STEM}.{extension}"


def content_disposition(title: str, suffix: str, *, inline: bool = False) -> str:
    """A ``Content-Disposition`` header value (RFC 6266): ``attachment; filename="<ascii>"``
    plus ``filename*=UTF-8''<percent-encoded>`` when the name is not plain ASCII.

    Both names come from :func:`safe_download_name`, so neither can break out of the header.
    """
    disposition = "inline" if inline else "attachment"
    name = safe_download_name(title, suffix)
    fallback = ascii_download_name(title, suffix)
    header = f'{disposition}; filename="{fallback}"'
    if name != fallback:
        header += f"; filename*=UTF-8''{quote(name, safe='')}"
    return header


def safe_export_path(export_dir: Path, title: str, suffix: str) -> Path:
    """Where to write an export named after ``title`` inside ``export_dir``.

    Raises ValueError if the resolved path would fall outside ``export_dir`` (it cannot, given
    :func:`safe_download_name`; the check guards against future changes to it).
    """
    root = export_dir.resolve()
    target = (root / safe_download_name(title, suffix)).resolve()
    if target.parent != root:
        raise ValueError(f"export path escapes the export folder: {target}")
    return target
