"""Export timings on the real drafts, through the app's own path (database -> document -> file).

    .venv/bin/python bench/export_bench.py [--repeat N] [--out bench/results/exports.json]

Imports the second and third drafts of the GPAI Code of Practice (../shared/corpus) into one code
in a throw-away SQLite database, then times, for the third draft: Markdown, HTML, DOCX and PDF;
and for the redline draft 2 -> draft 3: HTML (inline and side by side), DOCX with tracked changes,
and PDF (LibreOffice from the tracked DOCX, the app's default; WeasyPrint inline, full and changed
clauses only, for comparison). Every redline timing includes building both documents from the
database and comparing them. Also the on-screen redline page (GET /codes/<slug>/compare, signed
in, rendered whole) the first time (comparison computed) and again (comparison cached).
Targets: HTML <= 1 s, DOCX <= 3 s, PDF <= 10 s, redline <= 5 s each.
Each measurement is the best of ``--repeat`` runs (default 2); all runs are recorded, with the
previous figures of the output file beside them ("previous_s") so a slowdown shows.

``--ab REVISION`` (with ``--only-ab``, alone) times the redline HTML and DOCX of that git revision
against the working tree's, run by run in turn; each side imports its own tree's exporters in a
process of its own (bench/export_ab_worker.py), so any revision with ``codedraft/exports/redline.py``
and ``docx_redline.py`` works, and one without them is refused with a message.
"""
from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The shared documents beside the project, or beside a parent folder (a worktree sits deeper).
SHARED = os.environ.get("CODEDRAFT_SHARED_DIR") or next(
    (folder / "shared" for folder in ROOT.parents if (folder / "shared").is_dir()), ROOT.parent / "shared")
CORPUS = Path(SHARED) / "corpus"

TARGETS = {
    "draft3_md": 1.0, "draft3_html": 1.0, "draft3_docx": 3.0, "draft3_pdf": 10.0,
    "redline_html_inline": 5.0, "redline_html_side_by_side": 5.0, "redline_docx": 5.0,
    "redline_pdf": 5.0, "redline_pdf_weasyprint_inline": 5.0, "redline_pdf_weasyprint_changed_only": 5.0,
    "redline_page_first": 5.0, "redline_page_cached": 2.0,
}


def _time(make: Callable[[], Any], repeat: int) -> tuple[float, list[float], int]:
    runs, size = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        result = make()
        runs.append(round(time.perf_counter() - started, 3))
        size = len(result.data) if hasattr(result, "data") else len(result)
    return min(runs), runs, size


# What the A/B times: a revision without these has no redline exporters to compare.
REDLINE_MODULES = ("model", "compare", "redline", "docx_redline")
AB_WORKER = ROOT / "bench" / "export_ab_worker.py"
AB_CASES = ("redline_html", "redline_docx")


class RevisionError(Exception):
    """A revision the A/B cannot time; the message says why and what to pick instead."""


def resolve_revision(revision: str) -> str:
    """The commit ``revision`` names. Raises RevisionError when it names none, or one whose
    ``codedraft/exports`` lacks the redline exporters."""
    found = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"], cwd=ROOT,
                           capture_output=True, text=True)
    if found.returncode != 0:
        raise RevisionError(f"{revision!r} is not a revision of this repository")
    commit = found.stdout.strip()
    missing = [module for module in REDLINE_MODULES
               if subprocess.run(["git", "cat-file", "-e", f"{commit}:codedraft/exports/{module}.py"], cwd=ROOT,
                                 capture_output=True).returncode != 0]
    if missing:
        raise RevisionError(
            f"{revision} ({commit[:10]}) has no redline exporters to time: it lacks "
            + ", ".join(f"codedraft/exports/{module}.py" for module in missing)
            + ". Pick a revision from `git log --oneline -- codedraft/exports/redline.py`.")
    return commit


def write_out_tree(commit: str, folder: Path) -> Path:
    """The commit's ``codedraft`` package, and the stylesheets its HTML reads from ``static/``,
    written into ``folder`` as ``git archive`` gives them; nothing is installed."""
    archive = subprocess.run(["git", "archive", "--format=tar", commit, "codedraft", "static"], cwd=ROOT,
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


class RedlineWorker:
    """A process that imports one tree's redline exporters and times a case when asked
    (bench/export_ab_worker.py). Each tree has a process of its own, so a revision whose modules
    differ loads with its own siblings, and neither side's imports or memory touch the other's."""

    def __init__(self, label: str, tree: Path, drafts_file: Path, errors: Path) -> None:
        self.label, self.errors = label, errors
        with errors.open("w", encoding="utf-8") as stderr:
            self.process = subprocess.Popen([sys.executable, str(AB_WORKER), str(tree), str(drafts_file)],
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True)
        if self._answer() != "ready":
            raise RevisionError(f"the exporters of {label} do not load here: {self._last_error()}")

    def time(self, case: str) -> float:
        assert self.process.stdin is not None
        self.process.stdin.write(case + "\n")
        self.process.stdin.flush()
        answer = self._answer()
        if not answer:
            raise RevisionError(f"the {case} export of {self.label} failed: {self._last_error()}")
        return round(float(answer), 3)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)

    def _answer(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def _last_error(self) -> str:
        self.process.wait(timeout=30)
        lines = self.errors.read_text(encoding="utf-8").strip().splitlines()
        return lines[-1] if lines else f"exit status {self.process.returncode}"


def drafts_as_data() -> dict[str, Any]:
    """Drafts 2 and 3 of the corpus, split as the export tests split them, as plain data that
    any revision's model can be built from."""
    sys.path.insert(0, str(ROOT / "tests" / "exports"))
    from conftest import DRAFT_2, DRAFT_3, split_draft  # type: ignore[import-not-found]

    def plain(document: Any) -> dict[str, Any]:
        return {**dataclasses.asdict(document), "generated_at": document.generated_at.isoformat()}

    return {"old": plain(split_draft(DRAFT_2, "Second Draft")), "new": plain(split_draft(DRAFT_3, "Third Draft"))}


def ab_compare(revision: str, repeat: int) -> dict[str, Any]:
    """Time the draft 2 -> 3 redline renderers (HTML, DOCX) of ``revision`` and of the working
    tree, interleaved run by run from the same drafts: on a shared machine, whose load moves
    absolute timings by several times, the ratio is what says whether a change made them slower.
    Each side runs in a process of its own, importing its own tree; only one runs at a time.
    Raises RevisionError for a revision without redline exporters, or whose exporters fail."""
    commit = resolve_revision(revision)
    with tempfile.TemporaryDirectory(prefix="codedraft-ab-") as scratch:
        folder = Path(scratch)
        drafts_file = folder / "drafts.json"
        drafts_file.write_text(json.dumps(drafts_as_data()), encoding="utf-8")
        previous_tree = write_out_tree(commit, folder / "previous")
        workers: list[RedlineWorker] = []
        try:
            workers.append(RedlineWorker(f"{revision} ({commit[:10]})", previous_tree, drafts_file,
                                         folder / "previous.err"))
            workers.append(RedlineWorker("the working tree", ROOT, drafts_file, folder / "now.err"))
            return _interleaved(revision, commit, *workers, repeat=repeat)
        finally:
            for worker in workers:
                worker.close()


def _interleaved(revision: str, commit: str, previous: RedlineWorker, now: RedlineWorker, *,
                 repeat: int) -> dict[str, Any]:
    results: dict[str, Any] = {"revision": revision, "commit": commit, "load_average_1m": os.getloadavg()[0]}
    for case in AB_CASES:
        previous_runs, now_runs = [], []
        for _ in range(max(repeat, 3)):
            previous_runs.append(previous.time(case))
            now_runs.append(now.time(case))
        results[case] = {"previous_s": min(previous_runs), "now_s": min(now_runs), "previous_runs": previous_runs,
                         "now_runs": now_runs, "not_slower": min(now_runs) <= min(previous_runs) * 1.1}
        print(f"A/B {case:<20} previous {min(previous_runs):.3f} s, now {min(now_runs):.3f} s")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "exports.json")
    parser.add_argument("--ab", metavar="REVISION", default=None,
                        help="also time the redline renderers of this git revision against the working tree, "
                             "run by run in turn (robust to a busy machine)")
    parser.add_argument("--only-ab", action="store_true", help="run the --ab comparison only")
    args = parser.parse_args()
    if args.only_ab and not args.ab:
        parser.error("--only-ab needs --ab REVISION")
    if not CORPUS.exists():
        print(f"../shared/corpus not present: {CORPUS}", file=sys.stderr)
        return 2
    try:
        if args.ab:
            resolve_revision(args.ab)  # before the long part, so a wrong revision is said at once
        if not args.only_ab:
            write_report(args.out, measure_exports(args.out, args.repeat))
        if args.ab:
            report = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
            write_report(args.out, report | {"ab": ab_compare(args.ab, args.repeat)})
    except RevisionError as error:
        print(f"export_bench: {error}", file=sys.stderr)
        return 2
    return 0


def write_report(out: Path, report: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written to {out}")


def measure_exports(out: Path, repeat: int) -> dict[str, Any]:
    """Every export of the real drafts through the app, timed; the report to write to ``out``,
    with the figures ``out`` held before beside each timing."""
    from codedraft import create_app
    from codedraft.exports import builders, jobs
    from codedraft.exports.compare import compare_documents
    from codedraft.exports.pdf_export import app_asset_fetcher, export_redline_pdf, libreoffice_binary
    from codedraft.exports.redline import RedlineLayout
    from codedraft.extensions import db
    from codedraft.importer.operations import import_document

    previous: dict[str, Any] = {}
    if out.exists():
        previous = json.loads(out.read_text(encoding="utf-8")).get("results", {})
    folder = Path(tempfile.mkdtemp(prefix="codedraft-export-bench-"))
    app = create_app({
        "TESTING": True, "SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'bench.sqlite3'}",
        "EXPORT_DIR": str(folder / "exports"), "SEARCH_INDEX_DIR": str(folder / "search"), "REDIS_URL": None,
        "RATELIMIT_STORAGE_URI": "memory://", "WTF_CSRF_ENABLED": False, "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST": 1024,
    })
    results: dict[str, Any] = {}
    with app.app_context():
        db.create_all()
        second = import_document((CORPUS / "gpai-cop-draft2-2024-12.md").read_text(encoding="utf-8"),
                                 draft_name="Second Draft")
        import_document((CORPUS / "gpai-cop-draft3-2025-03.md").read_text(encoding="utf-8"), code=second.code,
                        draft_name="Third Draft")
        from codedraft.accounts.operations import create_user

        create_user("bench@example.test", "Bench Reader", "bench password 2026", is_office=True)
        db.session.commit()
        code = second.code
        browser = app.test_client()
        signed_in = browser.post("/login", data={"email": "bench@example.test", "password": "bench password 2026"})
        assert signed_in.status_code in (302, 303), signed_in.status_code

        def redline_page(fresh: bool) -> Callable[[], bytes]:
            def make() -> bytes:
                if fresh:
                    from codedraft.exports import views as export_views

                    app.extensions.pop(export_views._COMPARISONS_KEY, None)  # the app's remembered comparisons
                page = browser.get(f"/codes/{code.slug}/compare?from=1&to=2")
                assert page.status_code == 200, page.status_code
                return page.data
            return make

        def export(kind: str, fmt: str, **params: Any) -> Callable[[], Any]:
            request = jobs.ExportRequest.build(kind, fmt, params)
            return lambda: jobs.produce_export(code, request)

        def weasyprint_redline(changed_only: bool) -> Callable[[], bytes]:
            def make() -> bytes:
                comparison = compare_documents(builders.load_document(code, 1), builders.load_document(code, 2))
                return export_redline_pdf(comparison, layout=RedlineLayout.INLINE, changed_only=changed_only,
                                          fetcher=app_asset_fetcher())
            return make

        cases: dict[str, Callable[[], Any]] = {
            "draft3_md": export("draft", "md", draft="2"),
            "draft3_html": export("draft", "html", draft="2"),
            "draft3_docx": export("draft", "docx", draft="2"),
            "draft3_pdf": export("draft", "pdf", draft="2"),
            "redline_html_inline": export("redline", "html", **{"from": "1", "to": "2"}),
            "redline_html_side_by_side": export("redline", "html", layout="side-by-side", **{"from": "1", "to": "2"}),
            "redline_docx": export("redline", "docx", **{"from": "1", "to": "2"}),
            "redline_pdf": export("redline", "pdf", **{"from": "1", "to": "2"}),
            "redline_pdf_weasyprint_inline": weasyprint_redline(False),
            "redline_pdf_weasyprint_changed_only": weasyprint_redline(True),
            "redline_page_first": redline_page(True),
            "redline_page_cached": redline_page(False),
        }
        started = time.perf_counter()
        comparison = compare_documents(builders.load_document(code, 1), builders.load_document(code, 2))
        compare_s = round(time.perf_counter() - started, 3)
        for name, make in cases.items():
            best, runs, size = _time(make, repeat)
            before = previous.get(name, {}).get("seconds")
            results[name] = {"seconds": best, "runs": runs, "bytes": size, "target_s": TARGETS[name],
                             "meets_target": best <= TARGETS[name], "previous_s": before}
            print(f"{name:<38} {best:6.2f} s  (target {TARGETS[name]:.0f} s, before {before})  {size:>9,} bytes  "
                  f"runs {runs}")

    return {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average_1m": os.getloadavg()[0]},
        "redline_pdf_engine": "libreoffice" if libreoffice_binary() else "weasyprint",
        "draft2_to_3": {"clauses": len(comparison.clauses), "changed": len(comparison.changed),
                        "added": len(comparison.added), "removed": len(comparison.removed),
                        "compare_s": compare_s},
        "results": results,
    }


if __name__ == "__main__":
    raise SystemExit(main())
