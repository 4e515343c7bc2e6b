"""Split a Markdown code of practice (or a regulation) into chapters and clauses by its headings.

This module is pure: text in, frozen dataclasses out. ``parse_markdown`` never raises on odd
input; what it had to guess is reported in ``ParsedDocument.warnings``.

How a document is cut (the rules the importer promises):

* Headings are ATX headings (``#`` .. ``######``) outside fenced code blocks. Setext headings
  (``Title`` underlined with ``===``) are not recognised and stay text.
* The first heading, if it is a level-1 heading that is not itself a clause heading, is the
  document title. It belongs to no clause.
* Clause headings are recognised by their words, whatever their level:
  ``Commitment II.1.`` / ``Commitment 1 Title`` / ``Commitment II.1: Title`` (commitment),
  ``Measure 2.1:`` / ``Measure 1.1.`` / ``Measure I.2.4 Title`` (measure, whose parent is the
  commitment it sits under, or else the commitment its number starts with),
  ``Article 5: Title`` (article, number ``5``), ``ANNEX IV`` (annex, number ``IV``; a bold first
  line below it is taken as its title), ``Appendix 1. Title`` (a ``section`` clause numbered
  ``1``; ``Appendix 1.1`` is only a sub-heading). Any other heading is *plain*.
* A plain heading deeper than the clause it follows stays inside that clause's body (a KPI box
  under a measure, ``LEGAL TEXT`` under a commitment, ``Section A`` inside an annex). Inside a
  commitment the reference level is the commitment's own heading, so a ``Summary of changes``
  heading at the same level as the measures stays in the last measure. A plain heading at or above
  that level starts a new ``section`` clause (``glossary`` when its title says Glossary).
* Chapters. If the document has ``CHAPTER n`` headings (a regulation such as the AI Act), those
  are the chapters; ``SECTION n`` headings inside a chapter become ``section`` clauses that parent
  the articles below them; everything before the first chapter forms a leading chapter, which is
  called "Recitals" when numbered recitals ``(1) ...`` follow a ``Whereas:`` line (each such
  paragraph becomes a ``recital`` clause); annexes are collected in an "Annexes" chapter; a
  ``Done at ...`` line after the last article starts a closing section. Otherwise chapters come
  from heading levels: every plain (or Appendix) heading at the shallowest level below the title starts a
  chapter, unless commitments sit at that same level, in which case the whole document is one
  chapter. Text before the first chapter goes into a "front matter" section of a leading chapter.
* Repeated clause headings: when the same commitment (measure, article, annex) number occurs more
  than once, as in the third draft's summary list before its full text, the occurrence with the
  most measures below it, then the most text, wins; the other occurrences are demoted to plain
  sub-headings, so their text stays in the surrounding clause and the clause is counted once.
* Nothing is dropped: every non-blank source line lands in exactly one clause body, except
  heading lines that became a clause, chapter or document title and the ``(n)`` marker of a
  recital. Bodies lose only their leading and trailing blank lines.
* Keys are deterministic: ``commitment:II.1``, ``measure:II.1.1``, ``article:5``, ``annex:IV``,
  ``recital:12``, ``section:<slug of heading>``, ``glossary:<slug>``; a repeated key gets a
  ``#2``, ``#3`` suffix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

CLAUSE_KINDS: tuple[str, ...] = (
    "commitment",
    "measure",
    "article",
    "annex",
    "recital",
    "section",
    "glossary",
)

# How often (in lines) the progress callback is told how far the parser got.
PROGRESS_EVERY_LINES = 500
# Section keys are slugs of their heading, cut at a word boundary below this length.
MAX_SLUG_CHARS = 80
# A body line before this depth (level 7 does not exist) means "absorbs no heading".
_NO_HEADING_ABSORBED = 7


@dataclass(frozen=True)
class ParsedNote:
    """A drafters' note ("Summary of changes", "Explanation of changes", "future Recital"):
    it belongs to a clause but is not its text."""

    title: str
    body: str
    line: int


@dataclass(frozen=True)
class ParsedClause:
    """One clause of an imported document; ``body`` is Markdown without the clause's heading."""

    key: str
    kind: str
    number: str
    title: str
    body: str
    parent_key: str | None
    line: int
    notes: tuple[ParsedNote, ...] = ()


@dataclass(frozen=True)
class ParsedChapter:
    """A chapter of an imported document and its clauses, in document order."""

    key: str
    number: str
    title: str
    clauses: tuple[ParsedClause, ...]


@dataclass(frozen=True)
class ParsedDocument:
    """The result of ``parse_markdown``: title, chapters in order, and what had to be guessed."""

    title: str
    chapters: tuple[ParsedChapter, ...]
    warnings: tuple[str, ...]

    def clauses(self) -> Iterator[ParsedClause]:
        """Yield every clause of every chapter in document order."""
        for chapter in self.chapters:
            yield from chapter.clauses

    def count(self, kind: str) -> int:
        """Return how many clauses of ``kind`` the document has."""
        return sum(1 for clause in self.clauses() if clause.kind == kind)


# --- heading recognition -------------------------------------------------------------------

_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?=[ \t]|$)(.*)$")
_CLOSING_HASHES = re.compile(r"(?:^|[ \t]+)#+[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# What may follow a clause number before the title: "1.", "1:", "1 -", "1)" or just a space.
_SEP = r"[ \t]*(?:[.:)\-\u2013\u2014][ \t]*)?"
# A number ends where no word character and no ".digit" continues it.
_NUM_END = r"(?!\w|\.\d)"
_COMMITMENT = re.compile(
    rf"^commitment[ \t]+(?P<num>[IVXLC]+(?:\.\d+)+|\d+(?:\.\d+)*){_NUM_END}{_SEP}(?P<title>.*)$",
    re.IGNORECASE,
)
_MEASURE = re.compile(
    rf"^measure[ \t]+(?P<num>(?:[IVXLC]+\.)?\d+(?:\.\d+)*){_NUM_END}{_SEP}(?P<title>.*)$",
    re.IGNORECASE,
)
_ARTICLE = re.compile(rf"^article[ \t]+(?P<num>\d+[a-z]?)(?![\w(]|\.\d){_SEP}(?P<title>.*)$", re.IGNORECASE)
_ANNEX = re.compile(rf"^annex[ \t]+(?P<num>[IVXLC]+|\d+|[A-Z]){_NUM_END}{_SEP}(?P<title>.*)$", re.IGNORECASE)
_CHAPTER = re.compile(rf"^chapter[ \t]+(?P<num>[IVXLC]+|\d+){_NUM_END}{_SEP}(?P<title>.*)$", re.IGNORECASE)
_LEGAL_SECTION = re.compile(rf"^section[ \t]+(?P<num>\d+|[IVXLC]+){_NUM_END}{_SEP}(?P<title>.*)$", re.IGNORECASE)
_APPENDIX = re.compile(rf"^appendix[ \t]+(?P<num>\d+|[A-Z]){_NUM_END}{_SEP}(?P<title>.*)$", re.IGNORECASE)
# "Appendix 1.4.1 Model capabilities": a part of an appendix, split out as its own clause.
_SUB_APPENDIX = re.compile(rf"^appendix[ \t]+(?P<num>\d+(?:\.\d+)+){_NUM_END}{_SEP}(?P<title>.*)$", re.IGNORECASE)
# Drafters' notes: about the text, never part of it.
_NOTE = re.compile(
    r"^(?:explanation of (?:the )?changes?\b|summary of changes\b|potential material for (?:a )?future recitals?\b)",
    re.IGNORECASE,
)
# A note that names the one clause it explains ("Explanation of changes to Measure 16.1").
_NOTE_TARGET = re.compile(
    r"\b(?P<kind>commitment|measure)[ \t]+(?P<num>[IVXLC]+(?:\.\d+)+|\d+(?:\.\d+)*)\b", re.IGNORECASE
)
_SUMMARY_NOTE = re.compile(r"^(?:summary|explanation) of", re.IGNORECASE)
# "Transparency Section": the third draft names its sections, which become the chapters.
_NAMED_SECTION = re.compile(r"^(?P<name>[A-Z][\w']*(?:[ \t]+(?:and|&|[A-Z][\w']*))*)[ \t]+Section$")
_FAQ = re.compile(r"\b(?:frequently asked questions|FAQs?)\b", re.IGNORECASE)
_QUESTION = re.compile(r"^Q:[ \t]*(?:\d+\.[ \t]*)?(?P<question>\S.*?)\s*$")
_RECITALS_TITLE = re.compile(r"^(?:[IVX]+\.[ \t]+)?(?:recitals\b|whereas\b|preamble\b)", re.IGNORECASE)
# "- (a) The Signatories recognise ..." or "(a) Principle of ...": one recital of a lettered list.
_LETTERED_RECITAL = re.compile(r"^(?:[-*+][ \t]+)?\((?P<num>[a-z]{1,2})\)[ \t]+(?P<text>.*)$")
# "Recital a" / "Recital (12)": how CodeDraft's own exports head a recital.
_RECITAL_HEADING = re.compile(
    r"^recital[ \t]+\(?(?P<num>\d+|[a-z]{1,2})\)?(?:[.:][ \t]*(?P<title>.*))?$", re.IGNORECASE
)
_HTML_COMMENT_START = "<!--"
_HTML_COMMENT_END = "-->"
# "... — Safety and Security Chapter": a document that is one chapter of a code names it.
_TITLE_CHAPTER = re.compile(r"[\u2014\u2013-][ \t]*(?P<name>[^\u2014\u2013-]+?)[ \t]+Chapter$")
# "II. COMMITMENTS BY ..." as a chapter heading: number II, title COMMITMENTS BY ...
_ENUMERATED = re.compile(r"^(?P<num>[IVXLC]+|\d+)\.[ \t]+(?P<title>.+)$")
_GLOSSARY = re.compile(r"\bglossary\b", re.IGNORECASE)
_WHEREAS = re.compile(r"^\s*whereas\b[^.]{0,40}:?\s*$", re.IGNORECASE)
_RECITAL = re.compile(r"^\((?P<num>\d+)\)[ \t]+(?P<text>.*)$")
# An all-capitals paragraph such as "HAVE ADOPTED THIS REGULATION:" ends the recitals.
_ENACTING_FORMULA = re.compile(r"^[A-Z][A-Z ,;'\u2019\-]{3,}:?\s*$")
_BOLD_LINE = re.compile(r"^\s*(\*\*|__)(?P<text>.+?)\1\s*$")
_DONE_AT = re.compile(r"^Done at\s")

# Roles a heading can play; "plain" headings are clause boundaries only by their level.
_KEYWORD_ROLES = ("commitment", "measure", "article", "annex")
# Headings that always bound a clause or note, whatever their level.
_FORCED_ROLES = ("note", "faq")
_SCOPE_ENDERS: dict[str, frozenset[str]] = {
    "commitment": frozenset({"commitment", "article", "annex", "chapter"}),
    "measure": frozenset({"measure", "commitment", "article", "annex", "chapter"}),
    "article": frozenset({"article", "commitment", "annex", "chapter", "legal_section"}),
    "annex": frozenset({"annex", "chapter"}),
}


@dataclass(frozen=True)
class _Heading:
    """A heading line: its 0-based line index, level, plain text and recognised role."""

    index: int
    level: int
    text: str
    role: str
    number: str
    title: str


def _strip_emphasis(text: str) -> str:
    """Remove emphasis markers that wrap a whole heading (``**Commitment 1**``)."""
    changed = True
    while changed:
        changed = False
        for marker in ("**", "__", "*", "_"):
            if len(text) > 2 * len(marker) and text.startswith(marker) and text.endswith(marker):
                text = text[len(marker) : -len(marker)].strip()
                changed = True
    return text


def _heading_text(line: str) -> tuple[int, str] | None:
    """Return (level, plain text) if ``line`` is an ATX heading, else None."""
    match = _ATX_HEADING.match(line)
    if match is None:
        return None
    text = _CLOSING_HASHES.sub("", match.group(2).strip())
    return len(match.group(1)), _strip_emphasis(text.strip())


def _classify(index: int, level: int, text: str) -> _Heading:
    """Recognise what a heading's words say it is; the level plays no part here."""
    if _NOTE.match(text):
        return _Heading(index, level, text, "note", "", text)
    if _FAQ.search(text):
        return _Heading(index, level, text, "faq", "", text)
    patterns = (
        ("commitment", _COMMITMENT),
        ("measure", _MEASURE),
        ("article", _ARTICLE),
        ("annex", _ANNEX),
        ("chapter", _CHAPTER),
        ("legal_section", _LEGAL_SECTION),
        ("appendix", _APPENDIX),
        ("sub_appendix", _SUB_APPENDIX),
    )
    for role, pattern in patterns:
        match = pattern.match(text)
        if match:
            number = match.group("num")
            if role in ("annex", "chapter", "legal_section", "appendix", "sub_appendix"):
                number = number.upper()
            return _Heading(index, level, text, role, number, match.group("title").strip())
    return _Heading(index, level, text, "plain", "", text)


def _split_lines(text: str) -> list[str]:
    """Split on LF, CRLF or CR only (str.splitlines would also split on form feeds etc.)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _find_headings(lines: list[str]) -> list[_Heading]:
    """Return every heading outside fenced code blocks, classified, in order."""
    headings: list[_Heading] = []
    fence: str | None = None
    for index, line in enumerate(lines):
        fence_match = _FENCE.match(line)
        if fence_match:
            marker = fence_match.group(1)
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence):
                fence = None
            continue
        if fence is not None or "#" not in line[:4]:
            continue
        parsed = _heading_text(line)
        if parsed is not None:
            heading = _classify(index, parsed[0], parsed[1])
            if heading.role == "plain" and _NOTE.match(_first_text_after(lines, index)):
                # "Explanatory note" whose text opens "Summary of changes ...:" is a drafters' note.
                heading = _Heading(index, heading.level, heading.text, "note", "", heading.text)
            headings.append(heading)
    return headings


def _first_text_after(lines: list[str], index: int) -> str:
    """The first non-blank line after ``index`` ('' at the end or at another heading)."""
    for line in lines[index + 1 : index + 6]:
        if line.strip():
            return "" if _ATX_HEADING.match(line) else line.strip()
    return ""


def _demote(heading: _Heading) -> _Heading:
    """Turn a clause heading into a plain sub-heading (its text stays in a body)."""
    return _Heading(heading.index, heading.level, heading.text, "plain", "", heading.text)


def _occurrence_score(headings: list[_Heading], position: int, lines: list[str]) -> tuple[int, int, int]:
    """Rank one occurrence of a repeated clause heading: (measures below, text lines, position)."""
    heading = headings[position]
    enders = _SCOPE_ENDERS[heading.role]
    end_line = len(lines)
    measures = 0
    for later in headings[position + 1 :]:
        ends_scope = later.role in enders or (later.role not in _KEYWORD_ROLES and later.level <= heading.level)
        if ends_scope:
            end_line = later.index
            break
        if later.role == "measure" and later.number.startswith(heading.number + "."):
            measures += 1
    text_lines = sum(1 for line in lines[heading.index + 1 : end_line] if line.strip())
    return measures, text_lines, position


def _resolve_repeats(headings: list[_Heading], lines: list[str], warnings: list[str]) -> list[_Heading]:
    """Keep one occurrence of each repeated commitment/measure/article/annex heading."""
    occurrences: dict[tuple[str, str], list[int]] = {}
    for position, heading in enumerate(headings):
        if heading.role in _KEYWORD_ROLES:
            occurrences.setdefault((heading.role, heading.number.upper()), []).append(position)
    resolved = list(headings)
    for (role, number), positions in occurrences.items():
        if len(positions) < 2:
            continue
        winner = max(positions, key=lambda p: _occurrence_score(headings, p, lines))
        for position in positions:
            if position != winner:
                resolved[position] = _demote(headings[position])
                warnings.append(
                    f"line {headings[position].index + 1}: {role} {number} is repeated; "
                    f"the fuller occurrence at line {headings[winner].index + 1} is the clause, "
                    "this heading stays as text of the surrounding clause"
                )
    return resolved


def _slug(text: str) -> str:
    """Lower-case, hyphen-separated form of ``text`` for keys (keeps non-Latin letters)."""
    slug = re.sub(r"[\W_]+", "-", text.lower()).strip("-")
    if len(slug) > MAX_SLUG_CHARS:
        cut = slug[:MAX_SLUG_CHARS]
        slug = cut.rsplit("-", 1)[0] if "-" in cut else cut
    return slug or "untitled"


# --- building ------------------------------------------------------------------------------


@dataclass
class _ClauseDraft:
    """A clause while its body is still being collected; body holds (line index, text)."""

    key: str
    kind: str
    number: str
    title: str
    parent_key: str | None
    line: int
    anchor: int  # plain headings deeper than this level stay in the body
    body: list[tuple[int, str]] = field(default_factory=list)
    chapter_intro: bool = False  # dropped if empty: its heading is the chapter's title
    notes: list[_NoteDraft] = field(default_factory=list)


@dataclass
class _NoteDraft:
    """A drafters' note while its lines are being collected, and the clause it sits after."""

    title: str
    line: int
    level: int
    target: str | None  # the key of the clause its title names, if any
    body: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class _ChapterDraft:
    """A chapter while its clauses are being collected."""

    key: str
    number: str
    title: str
    heading_level: int
    explicit: bool = False  # came from a CHAPTER heading
    leading: bool = False  # holds what comes before the first chapter
    clauses: list[_ClauseDraft] = field(default_factory=list)


class _Keys:
    """Hands out keys unique within one document, suffixing repeats with #2, #3..."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}
        self.repeats: list[str] = []

    def claim(self, base: str) -> str:
        """Return ``base`` the first time, ``base#n`` the n-th time."""
        count = self._seen.get(base, 0) + 1
        self._seen[base] = count
        if count == 1:
            return base
        self.repeats.append(base)
        return f"{base}#{count}"


def _chapter_level(headings: list[_Heading], title: _Heading | None) -> int | None:
    """The level whose plain headings start chapters, or None for a one-chapter document."""
    levels = [h.level for h in headings if h is not title and h.role != "annex"]
    if not levels:
        return None
    chapter_level = min(levels)
    commitment_levels = [h.level for h in headings if h.role == "commitment"]
    if commitment_levels and min(commitment_levels) <= chapter_level:
        return None
    return chapter_level


def _normalise_name(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("&", " and ")).strip().lower()


def _section_names(headings: list[_Heading]) -> list[str]:
    """The names of a document's own sections ("Transparency Section" ...), when it has two or more."""
    names: list[str] = []
    for heading in headings:
        match = _NAMED_SECTION.match(heading.text) if heading.role == "plain" else None
        if match and match.group("name") not in names:
            names.append(match.group("name"))
    return names if len(names) >= 2 else []


def _named_blocks(headings: list[_Heading], level: int, names: list[str]) -> dict[int, str | None]:
    """For each heading at ``level``, the named section its block of text belongs to.

    The block of a heading runs to the next heading at or above its level. A block that lists the
    sections themselves (a heading "X Section") is the summary before the full text: no section.
    Otherwise the block belongs to the section its own heading names, else to the section of the
    commitments it holds (as the summary listed them), else to one a sub-heading names; a block
    that says nothing continues the section before it.
    """
    by_normal = sorted(((_normalise_name(n), n) for n in names), key=lambda pair: -len(pair[0]))
    listed: dict[str, str] = {}  # commitment number -> section, from the summary list
    current: tuple[str, int] | None = None
    for heading in headings:
        if current and heading.level <= current[1]:
            current = None
        named = _NAMED_SECTION.match(heading.text) if heading.role == "plain" else None
        if named and named.group("name") in names:
            current = (named.group("name"), heading.level)
            continue
        commitment = _COMMITMENT.match(heading.text)
        if current and commitment:
            listed.setdefault(commitment.group("num").upper(), current[0])

    def name_in(text: str) -> str | None:
        normal = _normalise_name(text)
        return next((name for key, name in by_normal if key in normal), None)

    result: dict[int, str | None] = {}
    previous: str | None = None
    starts = [n for n, h in enumerate(headings) if h.level == level]
    for position in starts:
        end = next((n for n in range(position + 1, len(headings)) if headings[n].level <= level), len(headings))
        block = headings[position:end]
        if any(h.role == "plain" and (m := _NAMED_SECTION.match(h.text)) and m.group("name") in names
               for h in block):
            result[headings[position].index] = None
            continue
        found = name_in(headings[position].text)
        found = found or next((listed[h.number.upper()] for h in block
                               if h.role == "commitment" and h.number.upper() in listed), None)
        found = found or next((name_in(h.text) for h in block[1:] if h.role not in _KEYWORD_ROLES
                               and name_in(h.text)), None)
        previous = found or previous
        result[headings[position].index] = previous
    return result


class _Builder:
    """Walks the lines once, opening chapters and clauses at the headings that bound them."""

    def __init__(self, headings: list[_Heading], warnings: list[str]) -> None:
        self.warnings = warnings
        self.keys = _Keys()
        first = headings[0] if headings else None
        self.title_heading = first if first and first.level == 1 and first.role == "plain" else None
        self.explicit_chapters = any(h.role == "chapter" for h in headings)
        self.chapter_level = None if self.explicit_chapters else _chapter_level(headings, self.title_heading)
        self.headings = {h.index: h for h in headings}
        self.chapters: list[_ChapterDraft] = []
        self.clause: _ClauseDraft | None = None
        self.commitment: _ClauseDraft | None = None  # open commitment scope
        self.legal_section: _ClauseDraft | None = None  # SECTION n of a regulation chapter
        self.commitments_by_number: dict[str, str] = {}
        self.appendices_by_number: dict[str, str] = {}
        self.note: _NoteDraft | None = None
        self.named = _section_names(headings) if self.chapter_level is not None else []
        self.named_blocks = (_named_blocks(headings, self.chapter_level, self.named)
                             if self.named and self.chapter_level is not None else {})
        self.named_chapters: dict[str | None, _ChapterDraft] = {}
        self.outline = False  # see parse_markdown(outline=True)
        self.outline_stack: list[tuple[int, _ClauseDraft]] = []  # (heading level, clause) of open clauses

    @property
    def title(self) -> str:
        """The document title ('' when the document does not start with a level-1 heading)."""
        return self.title_heading.text if self.title_heading else ""

    # chapters

    def _open_chapter(self, base_key: str, number: str, title: str, level: int) -> _ChapterDraft:
        chapter = _ChapterDraft(self.keys.claim(base_key), number, title, level)
        self.chapters.append(chapter)
        self.clause = None
        self.commitment = None
        self.legal_section = None
        self.outline_stack = []
        return chapter

    def _current_chapter(self) -> _ChapterDraft:
        """The chapter new clauses go into; opens the leading chapter if none is open."""
        if not self.chapters:
            chapter = self._open_chapter("chapter:document", "", self.title or "Document", 0)
            chapter.leading = True
        return self.chapters[-1]

    def _annexes_chapter(self) -> _ChapterDraft:
        """The chapter that collects annexes; opened at the first annex."""
        for chapter in self.chapters:
            if chapter.key == "chapter:annexes":
                if chapter is not self.chapters[-1]:
                    # An annex after other chapters resumed: keep document order honest.
                    self.warnings.append("annexes are interleaved with other chapters")
                return chapter
        return self._open_chapter("chapter:annexes", "", "Annexes", 1)

    # clauses

    def _open_clause(
        self,
        kind: str,
        number: str,
        title: str,
        base_key: str,
        line: int,
        anchor: int,
        parent_key: str | None = None,
        chapter: _ChapterDraft | None = None,
    ) -> _ClauseDraft:
        clause = _ClauseDraft(self.keys.claim(base_key), kind, number, title, parent_key, line + 1, anchor)
        (chapter or self._current_chapter()).clauses.append(clause)
        self.clause = clause
        return clause

    def _open_section(self, heading_text: str, line: int, anchor: int) -> _ClauseDraft:
        kind = "glossary" if _GLOSSARY.search(heading_text) else "section"
        return self._open_clause(kind, "", heading_text, f"{kind}:{_slug(heading_text)}", line, anchor)

    def _lazy_clause(self, line: int) -> _ClauseDraft:
        """A clause for text that no heading introduced (front matter, chapter intro)."""
        chapter = self._current_chapter()
        if chapter.leading:
            anchor = 0 if self.explicit_chapters else _NO_HEADING_ABSORBED
            return self._open_clause("section", "", "Front matter", "section:front-matter", line, anchor)
        heading = f"{chapter.number} {chapter.title}".strip() if chapter.explicit else chapter.title
        clause = self._open_section(heading, line, chapter.heading_level)
        clause.title = ""  # the chapter's heading is not repeated as a clause
        return clause

    # line handlers

    def text_line(self, index: int, line: str) -> None:
        """Add a non-heading line to the open clause (opening one if needed)."""
        if self.note is not None:
            self.note.body.append((index, line))
            return
        if not line.strip():
            if self.clause is not None:
                self.clause.body.append((index, line))
            return
        clause = self.clause or self._lazy_clause(index)
        if self.explicit_chapters and clause.kind == "article" and _DONE_AT.match(line):
            title = line.strip().rstrip(".")
            clause = self._open_clause("section", "", title, f"section:{_slug(title)}", index, clause.anchor)
        clause.body.append((index, line))

    def heading_line(self, index: int, line: str) -> None:
        """Open the chapter or clause a heading starts, or keep it as body text."""
        heading = self.headings[index]
        if heading is self.title_heading:
            return
        if self.note is not None:
            if heading.role == "plain" and heading.level > self.note.level:
                self.note.body.append((index, line))
                return
            self.note = None
        if self.outline and heading.level >= 2:
            self._outline_heading(heading, line)
            return
        if self.named and heading.level == self.chapter_level:
            self._enter_named_block(heading)
        handler = {
            "chapter": self._chapter_heading,
            "legal_section": self._legal_section_heading,
            "commitment": self._commitment_heading,
            "measure": self._measure_heading,
            "article": self._article_heading,
            "annex": self._annex_heading,
            "appendix": self._appendix_heading,
            "sub_appendix": self._sub_appendix_heading,
            "note": self._note_heading,
            "faq": self._faq_heading,
        }.get(heading.role, self._plain_heading)
        handler(heading, line)

    def _chapter_heading(self, heading: _Heading, line: str) -> None:
        # Any CHAPTER heading makes the document's chapters explicit (see __init__).
        chapter = self._open_chapter(
            f"chapter:{heading.number}", heading.number, heading.title or heading.text, heading.level
        )
        chapter.explicit = True

    def _legal_section_heading(self, heading: _Heading, line: str) -> None:
        chapter = self.chapters[-1] if self.chapters else None
        if chapter is None or not chapter.explicit:
            self._plain_heading(_demote(heading), line)
            return
        self.commitment = None
        # Section numbers restart in every chapter, so the chapter number makes the key unique.
        clause = self._open_clause(
            "section",
            heading.number,
            heading.title,
            f"section:{chapter.number}.{heading.number}",
            heading.index,
            heading.level,
        )
        self.legal_section = clause

    def _commitment_heading(self, heading: _Heading, line: str) -> None:
        clause = self._open_clause(
            "commitment",
            heading.number,
            heading.title,
            f"commitment:{heading.number}",
            heading.index,
            heading.level,
        )
        self.commitment = clause
        self.commitments_by_number.setdefault(heading.number.upper(), clause.key)

    def _measure_parent(self, heading: _Heading) -> str | None:
        """The open commitment, else the commitment the measure's number starts with."""
        number = heading.number.upper()
        if self.commitment is not None:
            if not number.startswith(self.commitment.number.upper() + "."):
                self.warnings.append(
                    f"line {heading.index + 1}: measure {heading.number} sits under commitment {self.commitment.number}"
                )
            return self.commitment.key
        prefix = number.rsplit(".", 1)[0] if "." in number else ""
        parent = self.commitments_by_number.get(prefix)
        if parent is None:
            self.warnings.append(f"line {heading.index + 1}: measure {heading.number} has no commitment")
        return parent

    def _measure_heading(self, heading: _Heading, line: str) -> None:
        parent = self._measure_parent(heading)
        anchor = self.commitment.anchor if self.commitment is not None else heading.level
        self._open_clause(
            "measure",
            heading.number,
            heading.title,
            f"measure:{heading.number}",
            heading.index,
            anchor,
            parent,
        )

    def _article_heading(self, heading: _Heading, line: str) -> None:
        self.commitment = None
        parent = self.legal_section.key if self.legal_section is not None else None
        self._open_clause(
            "article",
            heading.number,
            heading.title,
            f"article:{heading.number}",
            heading.index,
            heading.level,
            parent,
        )

    def _annex_heading(self, heading: _Heading, line: str) -> None:
        chapter = self._annexes_chapter()
        self.commitment = None
        self.legal_section = None
        self._open_clause(
            "annex",
            heading.number,
            heading.title,
            f"annex:{heading.number}",
            heading.index,
            heading.level,
            chapter=chapter,
        )

    def _starts_level_chapter(self, heading: _Heading) -> bool:
        if self.named:
            return False  # the named sections are the chapters (see _enter_named_block)
        return self.chapter_level is not None and heading.level == self.chapter_level

    def _enter_named_block(self, heading: _Heading) -> None:
        """Continue or open the chapter of the named section this heading's block belongs to."""
        name = self.named_blocks.get(heading.index)
        chapter = self.named_chapters.get(name)
        if chapter is not None and chapter is self.chapters[-1]:
            return
        if chapter is not None:
            self.warnings.append(f"line {heading.index + 1}: the {name or 'introduction'} part resumes "
                                 "after another section; it starts a second chapter")
        if name is None:
            chapter = self._open_chapter("chapter:introduction", "", "Introduction", heading.level)
            chapter.leading = True
        else:
            chapter = self._open_chapter(f"chapter:{_slug(name)}", "", name, heading.level)
        self.named_chapters[name] = chapter

    def _outline_heading(self, heading: _Heading, line: str) -> None:
        """A heading of an outline document: a clause at its depth, or text of the clause above."""
        if self.clause is not None and self.outline_stack and heading.level > self.outline_stack[-1][0] + 1:
            self.clause.body.append((heading.index, line))
            return
        while self.outline_stack and self.outline_stack[-1][0] >= heading.level:
            self.outline_stack.pop()
        parent = self.outline_stack[-1][1].key if self.outline_stack else None
        kind, number, title = "section", "", heading.text
        recital = _RECITAL_HEADING.match(heading.text)
        if heading.role in ("commitment", "measure", "article", "annex"):
            kind, number, title = heading.role, heading.number, heading.title
        elif recital is not None:
            kind, number, title = "recital", recital.group("num"), (recital.group("title") or "").strip()
        elif _GLOSSARY.search(heading.text):
            kind = "glossary"
        base = f"{kind}:{number}" if number else f"{kind}:{_slug(heading.text)}"
        clause = self._open_clause(kind, number, title, base, heading.index, heading.level, parent)
        if kind == "commitment":
            self.commitment = clause
        self.outline_stack.append((heading.level, clause))

    def _note_heading(self, heading: _Heading, line: str) -> None:
        """A drafters' note: kept beside the clause it explains, never in its text."""
        target_match = _NOTE_TARGET.search(heading.text)
        target = None
        if target_match and not re.search(r"\b(?:commitments|measures)\b", heading.text, re.IGNORECASE):
            target = f"{target_match.group('kind').lower()}:{target_match.group('num').upper()}"
        owner = self.clause or self._lazy_clause(heading.index)
        self.note = _NoteDraft(heading.text, heading.index + 1, heading.level, target)
        owner.notes.append(self.note)

    def _faq_heading(self, heading: _Heading, line: str) -> None:
        """Questions and answers: a clause of their own, split by question when finished."""
        self.commitment = None
        self._open_section(heading.text, heading.index, heading.level)

    def _sub_appendix_heading(self, heading: _Heading, line: str) -> None:
        parent_number = heading.number.rsplit(".", 1)[0]
        parent = self.appendices_by_number.get(parent_number)
        if parent is None:
            self.warnings.append(f"line {heading.index + 1}: appendix {heading.number} has no appendix {parent_number}")
        self.commitment = None
        clause = self._open_clause("section", heading.number, heading.title or heading.text,
                                   f"section:{_slug(heading.text)}", heading.index, heading.level, parent)
        self.appendices_by_number[heading.number] = clause.key

    def _appendix_heading(self, heading: _Heading, line: str) -> None:
        if self._starts_level_chapter(heading):
            self._open_chapter(f"chapter:{_slug(heading.text)}", "", heading.text, heading.level)
        self.commitment = None
        clause = self._open_clause(
            "section",
            heading.number,
            heading.title or heading.text,
            f"section:{_slug(heading.text)}",
            heading.index,
            heading.level,
        )
        self.appendices_by_number[heading.number] = clause.key

    def _in_preamble(self) -> bool:
        """Before the first CHAPTER of a regulation every plain heading is preamble text."""
        return self.explicit_chapters and all(not c.explicit for c in self.chapters)

    def _plain_heading(self, heading: _Heading, line: str) -> None:
        if self._starts_level_chapter(heading):
            enumerated = _ENUMERATED.match(heading.text)
            number = enumerated.group("num") if enumerated else ""
            title = enumerated.group("title") if enumerated else heading.text
            self._open_chapter(f"chapter:{number or _slug(title)}", number, title, heading.level)
            # The chapter's opening text is an untitled clause: the heading is the chapter's, not
            # repeated as a clause.
            intro = self._open_section(heading.text, heading.index, heading.level)
            intro.title, intro.chapter_intro = "", True
            return
        # A Whereas / Recitals heading always opens its own clause: its recitals are cut out of it.
        recitals = _RECITALS_TITLE.match(heading.text) is not None and not self._in_preamble()
        if self.clause is not None and heading.level > self.clause.anchor and not recitals:
            self.clause.body.append((heading.index, line))
            return
        if self._in_preamble():
            clause = self.clause or self._lazy_clause(heading.index)
            clause.body.append((heading.index, line))
            return
        self.commitment = None
        self._open_section(heading.text, heading.index, heading.level)


# --- finishing -----------------------------------------------------------------------------


def _split_recitals(builder: _Builder, chapter: _ChapterDraft) -> None:
    """Cut numbered recitals ``(1) ...`` after a ``Whereas:`` line out of the front matter."""
    if not chapter.clauses or chapter.clauses[0].key != "section:front-matter":
        return
    front = chapter.clauses[0]
    whereas = next((n for n, (_, text) in enumerate(front.body) if _WHEREAS.match(text)), None)
    if whereas is None:
        return
    pieces: list[_ClauseDraft] = []
    current = front
    expected = 1
    closed = False  # after the enacting formula no more recitals start
    for index, text in front.body[whereas + 1 :]:
        recital = None if closed else _RECITAL.match(text)
        if recital is not None and int(recital.group("num")) == expected:
            current = _ClauseDraft(
                builder.keys.claim(f"recital:{expected}"),
                "recital",
                str(expected),
                "",
                None,
                index + 1,
                _NO_HEADING_ABSORBED,
                [(index, recital.group("text"))],
            )
            pieces.append(current)
            expected += 1
            continue
        if not closed and expected > 1 and _ENACTING_FORMULA.match(text):
            title = text.strip().rstrip(":").strip()
            current = _ClauseDraft(
                builder.keys.claim(f"section:{_slug(title)}"),
                "section",
                "",
                title,
                None,
                index + 1,
                _NO_HEADING_ABSORBED,
                [(index, text)],
            )
            pieces.append(current)
            closed = True
            continue
        if current is not front:
            current.body.append((index, text))
    if not pieces:
        return
    first_recital_line = pieces[0].line - 1
    front.body = [(i, t) for (i, t) in front.body if i < first_recital_line]
    front.title = "Preamble"
    front.key = builder.keys.claim("section:preamble")
    chapter.clauses[1:1] = pieces
    chapter.key = builder.keys.claim("chapter:recitals")
    chapter.title = "Recitals"


def _split_lettered_recitals(builder: _Builder, chapter: _ChapterDraft) -> None:
    """Cut the lettered list ``- (a) ...`` of a Recitals / Whereas / Preamble clause into recitals.

    The recitals stay in the chapter, after the clause that introduced them, which becomes their
    parent; text after the list (a sub-heading, "Therefore, ...") starts an untitled section.
    """
    result: list[_ClauseDraft] = []
    for clause in chapter.clauses:
        result.append(clause)
        if clause.kind != "section" or not _RECITALS_TITLE.match(clause.title):
            continue
        result.extend(_lettered_pieces(builder, clause))
    chapter.clauses[:] = result


def _lettered_pieces(builder: _Builder, intro: _ClauseDraft) -> list[_ClauseDraft]:
    pieces: list[_ClauseDraft] = []
    expected = "a"
    current: _ClauseDraft | None = None
    cut: int | None = None  # position in intro.body where the recitals start
    for position, (index, text) in enumerate(intro.body):
        item = _LETTERED_RECITAL.match(text)
        if item is not None and item.group("num") == expected and (current is None or current.kind == "recital"):
            cut = position if cut is None else cut
            # Lettered recitals restart in every section: the section's key keeps theirs unique.
            base = f"recital:{intro.key.removeprefix('section:')}:{expected}"
            current = _ClauseDraft(builder.keys.claim(base), "recital", expected, "",
                                   intro.key, index + 1, _NO_HEADING_ABSORBED, [(index, item.group("text"))])
            pieces.append(current)
            expected = chr(ord(expected) + 1) if len(expected) == 1 and expected != "z" else "zz"
            continue
        if current is None:
            continue
        ends_list = text.strip() and not text.startswith((" ", "\t")) and current.kind == "recital"
        if ends_list:
            heading = _heading_text(text)
            title = heading[1] if heading else ""
            current = _ClauseDraft(builder.keys.claim(f"section:{_slug(title or text)}"), "section", "", title,
                                   None, index + 1, _NO_HEADING_ABSORBED, [] if heading else [(index, text)])
            pieces.append(current)
            continue
        current.body.append((index, text))
    if cut is not None:
        intro.body = intro.body[:cut]
        # Notes were collected on the intro while its body ran on; they follow the last piece.
        if pieces and intro.notes:
            pieces[-1].notes, intro.notes = intro.notes, []
    return pieces


def _split_questions(builder: _Builder, chapter: _ChapterDraft) -> None:
    """Cut a FAQ clause at its ``Q:`` lines: each question becomes a clause under the FAQ."""
    result: list[_ClauseDraft] = []
    for clause in chapter.clauses:
        result.append(clause)
        if clause.kind != "section" or not _FAQ.search(clause.title):
            continue
        current: _ClauseDraft | None = None
        cut: int | None = None
        for position, (index, text) in enumerate(clause.body):
            question = _QUESTION.match(text)
            if question is not None:
                cut = position if cut is None else cut
                title = question.group("question")
                current = _ClauseDraft(builder.keys.claim(f"section:faq-{_slug(title)}"), "section", "", title,
                                       clause.key, index + 1, _NO_HEADING_ABSORBED)
                result.append(current)
            elif current is not None:
                current.body.append((index, text))
        if cut is not None:
            clause.body = clause.body[:cut]
    chapter.clauses[:] = result


def _place_notes(builder: _Builder) -> None:
    """Give each note to the clause it explains.

    A note that names one commitment or measure goes to it. A "Summary of changes" after the last
    measure of a commitment explains the commitment, unless that commitment's measures carry
    summaries of their own (then each summary is its measure's).
    """
    clauses = {clause.key: clause for chapter in builder.chapters for clause in chapter.clauses}
    children: dict[str, list[_ClauseDraft]] = {}
    for clause in clauses.values():
        if clause.parent_key:
            children.setdefault(clause.parent_key, []).append(clause)
    for clause in list(clauses.values()):
        for note in list(clause.notes):
            owner = clauses.get(note.target) if note.target else None
            if owner is None and note.target is None and _is_summary(note):
                owner = _summary_owner(clause, clauses, children)
            if owner is not None and owner is not clause:
                clause.notes.remove(note)
                owner.notes.append(note)
    for clause in clauses.values():
        clause.notes.sort(key=lambda note: note.line)


def _is_summary(note: _NoteDraft) -> bool:
    """A summary or explanation of changes, by its title or by the words its text opens with."""
    first = next((text.strip() for _, text in note.body if text.strip()), "")
    return bool(_SUMMARY_NOTE.match(note.title) or _SUMMARY_NOTE.match(first))


def _summary_owner(clause: _ClauseDraft, clauses: dict[str, _ClauseDraft],
                   children: dict[str, list[_ClauseDraft]]) -> _ClauseDraft | None:
    """The parent, when ``clause`` is its last part (a measure, an appendix part) and no other part
    carries a summary of its own."""
    if clause.kind not in ("measure", "section") or clause.parent_key not in clauses:
        return None
    siblings = children.get(clause.parent_key, [])
    if not siblings or siblings[-1] is not clause:
        return None
    others_have = any(_is_summary(n) for sibling in siblings[:-1] for n in sibling.notes)
    return None if others_have else clauses[clause.parent_key]


def _drop_html_comments(lines: list[str], warnings: list[str]) -> list[str]:
    """Blank out HTML comments (outside fenced code): they are notes to editors, never published."""
    result: list[str] = []
    inside = False
    fence: str | None = None
    for number, line in enumerate(lines, start=1):
        fence_match = None if inside else _FENCE.match(line)
        if fence_match:
            marker = fence_match.group(1)
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence):
                fence = None
        if fence is not None:
            result.append(line)
            continue
        kept, rest, removed = [], line, False
        while rest:
            if inside:
                end = rest.find(_HTML_COMMENT_END)
                if end < 0:
                    rest = ""
                    break
                rest, inside = rest[end + len(_HTML_COMMENT_END):], False
                continue
            start = rest.find(_HTML_COMMENT_START)
            if start < 0:
                kept.append(rest)
                break
            kept.append(rest[:start])
            rest, inside, removed = rest[start + len(_HTML_COMMENT_START):], True, True
        if removed or (inside and line):
            warnings.append(f"line {number}: an HTML comment was left out (comments are never published)")
        result.append("".join(kept).rstrip() if removed or inside else line)
    return result


def _title_annex_from_bold_line(clause: _ClauseDraft) -> None:
    """An untitled annex takes its first line as title when that line is all bold."""
    if clause.kind != "annex" or clause.title:
        return
    first = next((text for _, text in clause.body if text.strip()), "")
    bold = _BOLD_LINE.match(first)
    if bold:
        clause.title = bold.group("text").strip()


def _name_single_chapter(builder: _Builder) -> None:
    """A document that is one chapter of a code ("... — Safety and Security Chapter") names it."""
    if len(builder.chapters) != 1 or not builder.chapters[0].leading:
        return
    match = _TITLE_CHAPTER.search(builder.title)
    if match:
        builder.chapters[0].title = match.group("name").strip()


def _body_text(body: list[tuple[int, str]]) -> str:
    """Join body lines, dropping leading and trailing blank lines."""
    texts = [text for _, text in body]
    start = 0
    while start < len(texts) and not texts[start].strip():
        start += 1
    end = len(texts)
    while end > start and not texts[end - 1].strip():
        end -= 1
    return "\n".join(texts[start:end])


def _freeze(builder: _Builder) -> tuple[ParsedChapter, ...]:
    """Turn the drafts into frozen chapters, dropping empty chapter-intro sections."""
    chapters: list[ParsedChapter] = []
    for chapter in builder.chapters:
        clauses: list[ParsedClause] = []
        for clause in chapter.clauses:
            _title_annex_from_bold_line(clause)
            body = _body_text(clause.body)
            if clause.chapter_intro and not body:
                continue
            notes = tuple(ParsedNote(note.title, _body_text(note.body), note.line) for note in clause.notes)
            clauses.append(
                ParsedClause(
                    clause.key,
                    clause.kind,
                    clause.number,
                    clause.title,
                    body,
                    clause.parent_key,
                    clause.line,
                    notes,
                )
            )
        chapters.append(ParsedChapter(chapter.key, chapter.number, chapter.title, tuple(clauses)))
    return tuple(chapters)


def parse_markdown(
    text: str, *, progress: Callable[[int, int], None] | None = None, outline: bool = False
) -> ParsedDocument:
    """Split ``text`` into chapters and clauses by its headings (rules in the module docstring).

    ``outline=True`` reads a document whose headings are exactly its outline, as CodeDraft's own
    Word export writes it: the title, level-1 chapters, and clause headings one level deeper per
    level of nesting (``Recital a`` for a recital, the bare title for a section); a heading more
    than one level below the clause before it is part of that clause's text.
    ``progress(done_lines, total_lines)`` is called every few hundred lines and once at the end.
    Never raises for any string input; an empty or blank document has no chapters.
    """
    warnings: list[str] = []
    lines = _drop_html_comments(_split_lines(text), warnings)
    total = len(lines)
    headings = _resolve_repeats(_find_headings(lines), lines, warnings)
    builder = _Builder(headings, warnings)
    if outline:
        # The outline is explicit: no guessing of named sections.
        builder.outline, builder.named, builder.named_blocks = True, [], {}
    heading_lines = builder.headings
    for index, line in enumerate(lines):
        if progress is not None and index % PROGRESS_EVERY_LINES == 0:
            progress(index, total)
        if index in heading_lines:
            builder.heading_line(index, line)
        else:
            builder.text_line(index, line)
    if builder.chapters and builder.chapters[0].leading:
        _split_recitals(builder, builder.chapters[0])
    for chapter in builder.chapters:
        _split_lettered_recitals(builder, chapter)
        _split_questions(builder, chapter)
    _place_notes(builder)
    _name_single_chapter(builder)
    for base in builder.keys.repeats:
        warnings.append(f"key {base} is used more than once; later ones got a #n suffix")
    if progress is not None:
        progress(total, total)
    return ParsedDocument(builder.title, _freeze(builder), tuple(warnings))
