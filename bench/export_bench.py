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
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
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


_AB_MODULES = ("model", "compare", "htmlkit", "redline", "docx_export", "docx_redline")


def ab_compare(revision: str, repeat: int) -> dict[str, Any]:
    """Time the draft 2 -> 3 redline renderers (HTML, DOCX) of ``revision`` and of the working
    tree in turn, in this process, from the same drafts: on a shared machine, whose load moves
    absolute timings by several times, the ratio is what says whether a change made them slower.
    The old modules are read with ``git show`` into a temporary package; nothing is installed."""
    import importlib
    import subprocess

    sys.path.insert(0, str(ROOT / "tests" / "exports"))
    from conftest import DRAFT_2, DRAFT_3, split_draft  # type: ignore[import-not-found]

    from codedraft.exports import compare as new_compare
    from codedraft.exports import docx_redline as new_docx
    from codedraft.exports import redline as new_redline

    package = Path(tempfile.mkdtemp(prefix="codedraft-ab-")) / "previous_exports"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    for module in _AB_MODULES:
        source = subprocess.run(["git", "show", f"{revision}:codedraft/exports/{module}.py"], cwd=ROOT,
                                check=True, capture_output=True, text=True).stdout
        if module == "htmlkit":  # its stylesheet path is relative to the package's place
            source = source.replace("Path(__file__).resolve().parents[2]", f"Path({str(ROOT)!r})")
        (package / f"{module}.py").write_text(source, encoding="utf-8")
    sys.path.insert(0, str(package.parent))
    old_model = importlib.import_module("previous_exports.model")
    old_compare = importlib.import_module("previous_exports.compare")
    old_redline = importlib.import_module("previous_exports.redline")
    old_docx = importlib.import_module("previous_exports.docx_redline")

    def as_old(document: Any) -> Any:
        return old_model.ExportDocument(
            code_title=document.code_title, draft_label=document.draft_label, language=document.language,
            generated_at=document.generated_at,
            chapters=tuple(old_model.ExportChapter(
                key=chapter.key, number=chapter.number, title=chapter.title,
                clauses=tuple(old_model.ExportClause(
                    uid=c.uid, number=c.number, title=c.title, kind=c.kind, body_markdown=c.body_markdown,
                    chapter_key=c.chapter_key, position=c.position, parent_uid=c.parent_uid)
                    for c in chapter.clauses)) for chapter in document.chapters))

    second, third = split_draft(DRAFT_2, "Second Draft"), split_draft(DRAFT_3, "Third Draft")
    old_second, old_third = as_old(second), as_old(third)
    # Each case is what an export does once it has the drafts: compare them, then write the file.
    cases = {
        "redline_html": (lambda: old_redline.export_redline_html(old_compare.compare_documents(old_second, old_third)),
                         lambda: new_redline.export_redline_html(new_compare.compare_documents(second, third))),
        "redline_docx": (lambda: old_docx.export_redline_docx(old_compare.compare_documents(old_second, old_third)),
                         lambda: new_docx.export_redline_docx(new_compare.compare_documents(second, third))),
    }
    results: dict[str, Any] = {"revision": revision, "load_average_1m": os.getloadavg()[0]}
    for name, (old, new) in cases.items():
        old_runs, new_runs = [], []
        for _ in range(max(repeat, 3)):
            for runs, make in ((old_runs, old), (new_runs, new)):
                started = time.perf_counter()
                make()
                runs.append(round(time.perf_counter() - started, 3))
        results[name] = {"previous_s": min(old_runs), "now_s": min(new_runs), "previous_runs": old_runs,
                         "now_runs": new_runs, "not_slower": min(new_runs) <= min(old_runs) * 1.1}
        print(f"A/B {name:<20} previous {min(old_runs):.3f} s, now {min(new_runs):.3f} s")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "exports.json")
    parser.add_argument("--ab", metavar="REVISION", default=None,
                        help="also time the redline renderers of this git revision against the working tree, "
                             "interleaved in one process (robust to a busy machine)")
    parser.add_argument("--only-ab", action="store_true", help="run the --ab comparison only")
    args = parser.parse_args()
    if not CORPUS.exists():
        print(f"../shared/corpus not present: {CORPUS}", file=sys.stderr)
        return 2

    from codedraft import create_app
    from codedraft.exports import builders, jobs
    from codedraft.exports.compare import compare_documents
    from codedraft.exports.pdf_export import app_asset_fetcher, export_redline_pdf, libreoffice_binary
    from codedraft.exports.redline import RedlineLayout
    from codedraft.extensions import db
    from codedraft.importer.operations import import_document

    if args.only_ab:
        if not args.ab:
            parser.error("--only-ab needs --ab REVISION")
        report = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
        report["ab"] = ab_compare(args.ab, args.repeat)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"written to {args.out}")
        return 0
    previous: dict[str, Any] = {}
    if args.out.exists():
        previous = json.loads(args.out.read_text(encoding="utf-8")).get("results", {})
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
            best, runs, size = _time(make, args.repeat)
            before = previous.get(name, {}).get("seconds")
            results[name] = {"seconds": best, "runs": runs, "bytes": size, "target_s": TARGETS[name],
                             "meets_target": best <= TARGETS[name], "previous_s": before}
            print(f"{name:<38} {best:6.2f} s  (target {TARGETS[name]:.0f} s, before {before})  {size:>9,} bytes  "
                  f"runs {runs}")

    report = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average_1m": os.getloadavg()[0]},
        "redline_pdf_engine": "libreoffice" if libreoffice_binary() else "weasyprint",
        "draft2_to_3": {"clauses": len(comparison.clauses), "changed": len(comparison.changed),
                        "added": len(comparison.added), "removed": len(comparison.removed),
                        "compare_s": compare_s},
        "results": results,
    }
    if args.ab:
        report["ab"] = ab_compare(args.ab, args.repeat)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
