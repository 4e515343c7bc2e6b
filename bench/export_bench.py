"""Export timings on the real drafts, through the app's own path (database -> document -> file).

    .venv/bin/python bench/export_bench.py [--repeat N] [--out bench/results/exports.json]

Imports the second and third drafts of the GPAI Code of Practice (../shared/corpus) into one code
in a throw-away SQLite database, then times, for the third draft: Markdown, HTML, DOCX and PDF;
and for the redline draft 2 -> draft 3: HTML (inline and side by side), DOCX with tracked changes,
and PDF (LibreOffice from the tracked DOCX, the app's default; WeasyPrint inline, full and changed
clauses only, for comparison). Every redline timing includes building both documents from the
database and comparing them. Targets: HTML <= 1 s, DOCX <= 3 s, PDF <= 10 s, redline <= 5 s each.
Each measurement is the best of ``--repeat`` runs (default 2); all runs are recorded.
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
CORPUS = Path(os.environ.get("CODEDRAFT_SHARED_DIR") or next((p / "shared" for p in ROOT.parents if (p / "shared").is_dir()), ROOT.parent / "shared")) / "corpus"

TARGETS = {
    "draft3_md": 1.0, "draft3_html": 1.0, "draft3_docx": 3.0, "draft3_pdf": 10.0,
    "redline_html_inline": 5.0, "redline_html_side_by_side": 5.0, "redline_docx": 5.0,
    "redline_pdf": 5.0, "redline_pdf_weasyprint_inline": 5.0, "redline_pdf_weasyprint_changed_only": 5.0,
}


def _time(make: Callable[[], Any], repeat: int) -> tuple[float, list[float], int]:
    runs, size = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        result = make()
        runs.append(round(time.perf_counter() - started, 3))
        size = len(result.data) if hasattr(result, "data") else len(result)
    return min(runs), runs, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "exports.json")
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

    folder = Path(tempfile.mkdtemp(prefix="codedraft-export-bench-"))
    app = create_app({
        "TESTING": True, "SECRET_KEY": "bench", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'bench.sqlite3'}",
        "EXPORT_DIR": str(folder / "exports"), "SEARCH_INDEX_DIR": str(folder / "search"), "REDIS_URL": None,
        "RATELIMIT_STORAGE_URI": "memory://",
    })
    results: dict[str, Any] = {}
    with app.app_context():
        db.create_all()
        second = import_document((CORPUS / "gpai-cop-draft2-2024-12.md").read_text(encoding="utf-8"),
                                 draft_name="Second Draft")
        import_document((CORPUS / "gpai-cop-draft3-2025-03.md").read_text(encoding="utf-8"), code=second.code,
                        draft_name="Third Draft")
        db.session.commit()
        code = second.code

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
        }
        started = time.perf_counter()
        comparison = compare_documents(builders.load_document(code, 1), builders.load_document(code, 2))
        compare_s = round(time.perf_counter() - started, 3)
        for name, make in cases.items():
            best, runs, size = _time(make, args.repeat)
            results[name] = {"seconds": best, "runs": runs, "bytes": size, "target_s": TARGETS[name],
                             "meets_target": best <= TARGETS[name]}
            print(f"{name:<38} {best:6.2f} s  (target {TARGETS[name]:.0f} s)  {size:>9,} bytes  runs {runs}")

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
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
