"""Fixtures for the search engine: small hand-made documents and an index of the real corpus.

The corpus is split at Markdown headings by a tiny local helper (the real importer lives
elsewhere): each heading with text under it becomes one clause document of its draft.
Helpers are handed to tests through fixtures, never imported (several conftest modules share
the name ``conftest``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import select

from codedraft.search.engine import SearchDocument, SearchEngine, SearchQuery
from codedraft.search.postgres_backend import PostgresSearchEngine
from codedraft.search.sqlite_backend import SqliteSearchEngine
from codedraft.search.whoosh_backend import WhooshSearchEngine

ROOT = Path(__file__).resolve().parents[2]
# ../shared beside the checkout; a worktree kept one level deeper finds it one level up.
SHARED = next((p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.is_dir()),
              ROOT.parent / "shared")
CORPUS = SHARED / "corpus"

GPAI_CODE = 1
AI_ACT_CODE = 2


@dataclasses.dataclass(frozen=True)
class CorpusFile:
    """One Markdown file of the corpus and the draft it stands for."""

    name: str
    code_id: int
    code_title: str
    draft: str
    draft_label: str


CORPUS_FILES: tuple[CorpusFile, ...] = (
    CorpusFile("gpai-cop-draft2-2024-12.md", GPAI_CODE, "GPAI Code of Practice", "2", "Second Draft"),
    CorpusFile("gpai-cop-draft3-2025-03.md", GPAI_CODE, "GPAI Code of Practice", "3", "Third Draft"),
    CorpusFile(
        "gpai-cop-final-2025-07-safety-security.md",
        GPAI_CODE,
        "GPAI Code of Practice",
        "live",
        "Final (Safety and Security)",
    ),
    CorpusFile("eu-ai-act-regulation-2024-1689.md", AI_ACT_CODE, "AI Act", "live", "OJ 12.7.2024"),
)

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_NUMBERED = re.compile(
    r"\b(Commitment|Measure|Article|Appendix|Annex)\s+([IVX]+(?:\.\d+)*|\d+(?:\.\d+)*[a-z]?)",
    re.IGNORECASE,
)


@dataclasses.dataclass(frozen=True)
class Section:
    """A heading, the text under it (up to the next heading), and its level-1/2 chapter."""

    level: int
    heading: str
    body: str
    chapter: str


def split_sections(markdown: str) -> list[Section]:
    """Split Markdown at every heading; sections with no text under them are dropped."""
    sections: list[Section] = []
    chapter = ""
    heading, level, lines = "", 0, []  # text before the first heading is ignored

    def flush() -> None:
        body = "\n".join(lines).strip()
        if heading and body:
            sections.append(Section(level, heading, body, chapter))

    for line in markdown.splitlines():
        match = _HEADING.match(line)
        if match is None:
            lines.append(line)
            continue
        flush()
        level, heading, lines = len(match.group(1)), match.group(2).strip(), []
        if level <= 2:
            chapter = heading
    flush()
    return sections


def _clause_key(heading: str) -> tuple[str, str]:
    """(uid stem, clause number) for a heading: "Measure II.1.2. Forecasting" -> ("measure-ii.1.2", "II.1.2")."""
    match = _NUMBERED.search(heading)
    if match:
        number = match.group(2).rstrip(".")
        return f"{match.group(1).lower()}-{number.lower()}", number
    slug = re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")[:60]
    return slug or "section", ""


def corpus_file_documents(source: CorpusFile, markdown: str) -> list[SearchDocument]:
    """Clause documents for one corpus file; repeated headings get a numeric suffix."""
    documents: list[SearchDocument] = []
    seen: dict[str, int] = {}
    for section in split_sections(markdown):
        stem, number = _clause_key(section.heading)
        seen[stem] = seen.get(stem, 0) + 1
        uid = stem if seen[stem] == 1 else f"{stem}~{seen[stem]}"
        where = "live" if source.draft == "live" else f"draft:{source.draft}"
        documents.append(
            SearchDocument(
                doc_id=f"clause:{source.code_id}/{uid}:{where}",
                kind="clause",
                code_id=source.code_id,
                code_title=source.code_title,
                chapter=section.chapter,
                clause_uid=f"{source.code_id}/{uid}",
                clause_number=number,
                clause_title=section.heading,
                draft=source.draft,
                draft_label=source.draft_label,
                body=section.body,
                visibility=[f"code:{source.code_id}"],
            )
        )
    return documents


def load_corpus_documents() -> list[SearchDocument]:
    """Every clause document of the corpus, or skip when ../shared/corpus is absent."""
    if not CORPUS.is_dir():
        pytest.skip(f"../shared/corpus not present: {CORPUS}")
    documents: list[SearchDocument] = []
    for source in CORPUS_FILES:
        path = CORPUS / source.name
        if not path.exists():
            pytest.skip(f"../shared/corpus not present: {path}")
        documents.extend(corpus_file_documents(source, path.read_text(encoding="utf-8")))
    return documents


# --- both backends: Whoosh in a folder, PostgreSQL in a database made for the session --------

BACKENDS = ("whoosh", "sqlite", "postgres")


def require_postgres() -> None:
    """Skip when PostgreSQL does not answer; under CI=true fail instead, so a missing service
    can never pass silently (the rule of tests/scaleout/conftest.py)."""
    from tests.scaleout import cluster

    try:
        with psycopg.connect(cluster.PG_ADMIN_URL, connect_timeout=3):
            return
    except psycopg.Error as error:
        problem = f"PostgreSQL at {cluster.PG_ADMIN_URL} is unreachable: {error}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the PostgreSQL search backend needs PostgreSQL under CI: {problem}")
    pytest.skip(f"the PostgreSQL search backend needs PostgreSQL: {problem}")


@contextlib.contextmanager
def migrated_database(prefix: str) -> Iterator[str]:
    """The SQLAlchemy URL of a fresh PostgreSQL database upgraded by every migration (so the
    search migration itself is exercised); dropped afterwards."""
    from flask_migrate import upgrade

    from codedraft.cli import install_migrations
    from codedraft.extensions import db
    from codedraft.search.sync import INSTALLED_KEY
    from tests.scaleout import cluster

    require_postgres()
    with cluster.fresh_database(prefix) as name:
        url = cluster.sqlalchemy_url(name)
        app = cluster.local_app(url)
        # This app only migrates. Every app is installed for search sync and found by its
        # database URL, so commits of a later app on this database would start this one's
        # live indexer, whose connections nobody closes.
        app.extensions.pop(INSTALLED_KEY, None)
        install_migrations(app)
        with app.app_context():
            upgrade(directory=str(Path(__file__).resolve().parents[2] / "migrations"))
            db.engine.dispose()
        yield url


@pytest.fixture(scope="session")
def migrated_pg_database() -> Callable[[str], contextlib.AbstractContextManager[str]]:
    """Factory: ``with migrated_pg_database("prefix") as url`` gives a fresh migrated database."""
    return migrated_database


def clear_postgres_index(url: str) -> None:
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as connection:
        connection.execute("DELETE FROM search_document")
        connection.execute("DELETE FROM search_word")


@pytest.fixture(scope="session")
def pg_search_url() -> Iterator[str]:
    """A PostgreSQL database with the search tables, emptied by each test that uses it."""
    with migrated_database("codedraft_search") as url:
        yield url


@pytest.fixture
def empty_pg_index(pg_search_url: str) -> str:
    """The session's PostgreSQL search tables, emptied for this test; their database URL."""
    clear_postgres_index(pg_search_url)
    return pg_search_url


@dataclasses.dataclass
class IndexSite:
    """Where one test's index lives; ``open()`` opens an engine on it, as another thread or
    process would (each is closed after the test)."""

    backend: str
    location: str
    opened: list[SearchEngine] = dataclasses.field(default_factory=list)

    def open(self, **options: Any) -> SearchEngine:
        engine: SearchEngine
        if self.backend == "whoosh":
            engine = WhooshSearchEngine(self.location, **options)
        elif self.backend == "sqlite":
            engine = SqliteSearchEngine(self.location, **options)
        else:
            engine = PostgresSearchEngine(self.location, **options)
        self.opened.append(engine)
        return engine


@pytest.fixture(params=BACKENDS)
def index_site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IndexSite]:
    """An empty index of each backend: a folder of this test, or the session's PostgreSQL tables."""
    if request.param in ("whoosh", "sqlite"):
        site = IndexSite(request.param, str(tmp_path / "index"))
    else:
        url = request.getfixturevalue("pg_search_url")
        clear_postgres_index(url)
        site = IndexSite("postgres", url)
    yield site
    for engine in site.opened:
        engine.close()


@pytest.fixture
def engine(index_site: IndexSite) -> SearchEngine:
    """An empty index, once per backend."""
    return index_site.open()


@dataclasses.dataclass
class CorpusIndex:
    """The corpus, indexed once per test session and backend."""

    engine: SearchEngine
    documents: list[SearchDocument]
    build_seconds: float
    backend: str


@pytest.fixture(scope="session")
def corpus_documents() -> list[SearchDocument]:
    return load_corpus_documents()


@pytest.fixture(scope="session", params=BACKENDS)
def corpus_index(
    request: pytest.FixtureRequest, corpus_documents: list[SearchDocument], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CorpusIndex]:
    with contextlib.ExitStack() as stack:
        engine: SearchEngine
        if request.param == "whoosh":
            engine = WhooshSearchEngine(tmp_path_factory.mktemp("corpus-index") / "index")
        elif request.param == "sqlite":
            engine = SqliteSearchEngine(tmp_path_factory.mktemp("corpus-index-sqlite") / "index")
        else:
            engine = PostgresSearchEngine(stack.enter_context(migrated_database("codedraft_corpus")))
        stack.callback(engine.close)
        started = time.perf_counter()
        engine.rebuild(corpus_documents)
        built = time.perf_counter() - started
        yield CorpusIndex(engine, corpus_documents, built, request.param)


MakeDocument = Callable[..., SearchDocument]


@pytest.fixture
def make_document() -> MakeDocument:
    """Factory: ``make_document("clause:a:live", body="...")`` with sensible defaults."""

    def make(doc_id: str, **overrides: object) -> SearchDocument:
        defaults: dict[str, object] = {
            "doc_id": doc_id,
            "kind": "clause",
            "code_id": GPAI_CODE,
            "body": "",
            "visibility": [f"code:{GPAI_CODE}"],
            "code_title": "Test code",
            "chapter": "Transparency",
            "clause_uid": doc_id.split(":")[1] if doc_id.count(":") >= 2 else doc_id,
            "clause_number": "1.1",
            "clause_title": "Documentation",
            "draft": "live",
        }
        defaults.update(overrides)
        return SearchDocument(**defaults)  # type: ignore[arg-type]

    return make


@pytest.fixture
def ask() -> Callable[..., SearchQuery]:
    """Factory for queries: ``ask("risk", allowed=["code:1"], page=2)``."""

    def build(text: str, allowed: list[str] | None = None, **kwargs: object) -> SearchQuery:
        tokens = [f"code:{GPAI_CODE}"] if allowed is None else allowed
        return SearchQuery(text=text, allowed_tokens=tokens, **kwargs)  # type: ignore[arg-type]

    return build


# --- the application side: an app with search installed, and the real corpus imported ------


@pytest.fixture
def search_app(app):  # type: ignore[no-untyped-def]
    """The shared ``app`` fixture with search installed; its engine and indexer stop afterwards."""
    from codedraft.search import install
    from codedraft.search.indexing import close_search_engine
    from codedraft.search.sync import stop_live_indexer

    app.config.update(SEARCH_LIVE_INTERVAL=0.2, SEARCH_WRITE_TIMEOUT=0.5)
    install(app)
    yield app
    stop_live_indexer(app)
    close_search_engine(app)


@dataclasses.dataclass
class CorpusSite:
    """An app holding the GPAI Code (drafts 2 and 3 imported as its drafts 1 and 2), the AI Act
    as a second code, people of several roles, and a few comments."""

    app: Any
    gpai_slug: str
    act_slug: str
    gpai_id: int
    act_id: int
    emails: dict[str, str]
    tokens: dict[str, str]
    comment_ids: dict[str, int]
    clause_uids: dict[str, str]

    signed_in: dict[str, Any] = dataclasses.field(default_factory=dict)

    def client(self, who: str | None = None) -> Any:
        """A test client signed in as ``who`` (one per person: sign-in is rate-limited)."""
        from tests.conftest import login

        if who is None:
            return self.app.test_client()
        if who not in self.signed_in:
            client = self.app.test_client()
            response = login(client, self.emails[who])
            assert response.status_code == 302
            self.signed_in[who] = client
        return self.signed_in[who]


@pytest.fixture(scope="module")
def corpus_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CorpusSite]:
    from codedraft import create_app
    from codedraft.accounts import operations as accounts
    from codedraft.codes.models import Clause, Role
    from codedraft.extensions import db
    from codedraft.feedback.models import Comment
    from codedraft.importer.operations import import_document
    from codedraft.search import install
    from codedraft.search.indexing import close_search_engine
    from codedraft.search.sync import stop_live_indexer
    from tests.conftest import PASSWORD, FreshContextClient, app_config

    for name in ("gpai-cop-draft2-2024-12.md", "gpai-cop-draft3-2025-03.md", "eu-ai-act-regulation-2024-1689.md"):
        if not (CORPUS / name).exists():
            pytest.skip(f"../shared/corpus not present: {CORPUS / name}")
    app = create_app(app_config(tmp_path_factory.mktemp("corpus-site")))
    app.test_client_class = FreshContextClient
    install(app)
    with app.app_context():
        db.create_all()
        second = import_document((CORPUS / "gpai-cop-draft2-2024-12.md").read_text(encoding="utf-8"),
                                 title="GPAI Code of Practice", draft_name="Second Draft")
        db.session.commit()
        gpai = second.code
        import_document((CORPUS / "gpai-cop-draft3-2025-03.md").read_text(encoding="utf-8"), code=gpai,
                        draft_name="Third Draft")
        db.session.commit()
        act = import_document((CORPUS / "eu-ai-act-regulation-2024-1689.md").read_text(encoding="utf-8"),
                              title="AI Act", draft_name="Official Journal").code
        db.session.commit()
        people = {
            "office": accounts.create_user("office@example.test", "Olga Office", PASSWORD, is_office=True),
            "act_observer": accounts.create_user("observer@example.test", "Otto Observer", PASSWORD),
            "member": accounts.create_user("member@example.test", "Mia Member", PASSWORD),
            "academic": accounts.create_user(
                "academic@example.test", "Anna Kowalska", PASSWORD,
                organisation=accounts.get_or_create_organisation("Uni", "academia")),
            "industry": accounts.create_user(
                "industry@example.test", "Céline Dupont", PASSWORD,
                organisation=accounts.get_or_create_organisation("Corp", "industry")),
        }
        accounts.grant_role(people["act_observer"], act, Role.observer)
        accounts.grant_role(people["member"], gpai, Role.member)
        accounts.grant_role(people["academic"], gpai, Role.reviewer)
        accounts.grant_role(people["industry"], gpai, Role.reviewer)
        clause = db.session.scalars(
            select(Clause).where(Clause.code_id == gpai.id, Clause.withdrawn.is_(False), Clause.number != "")
            .order_by(Clause.position)
        ).first()
        assert clause is not None
        comments = {
            "open": Comment(code_id=gpai.id, clause_id=clause.id, author_id=people["academic"].id,
                            organisation="Uni", category="academia", status="open",
                            body="The wombatish thresholds for systemic risk need an independent review."),
            "hidden": Comment(code_id=gpai.id, clause_id=clause.id, author_id=people["industry"].id,
                              organisation="Corp", category="industry", status="rejected", hidden=True,
                              body="Quokkaword: this text was hidden by the moderators."),
        }
        db.session.add_all(comments.values())
        db.session.commit()
        tokens = {who: accounts.create_api_token(people[who], "test")[1] for who in people}
        db.session.commit()
        site = CorpusSite(
            app=app, gpai_slug=gpai.slug, act_slug=act.slug, gpai_id=gpai.id, act_id=act.id,
            emails={who: user.email for who, user in people.items()}, tokens=tokens,
            comment_ids={k: c.id for k, c in comments.items()}, clause_uids={"commented": clause.uid},
        )
        db.session.remove()
    yield site
    stop_live_indexer(app)
    close_search_engine(app)
    with app.app_context():
        db.engine.dispose()
