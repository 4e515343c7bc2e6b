"""One side of export_bench.py's A/B: the redline exporters of one source tree, timed on request.

    python bench/export_ab_worker.py TREE DRAFTS_JSON

``TREE`` holds a ``codedraft`` package (the working tree, or a revision written out by
``git archive``); its ``codedraft.exports`` is imported as it stands, with its own sibling modules,
so a revision that split a module or added one still loads. ``DRAFTS_JSON`` holds the two drafts
as plain data (``{"old": document, "new": document}``). The worker prints ``ready``, then for each
case name read from stdin runs the case once and prints its seconds. A tree whose exporters do
not load prints one line to stderr and exits with 3.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

CANNOT_LOAD = 3


def main() -> int:
    tree, drafts_file = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    # First on the path, so this tree's package wins over the editable install of the project.
    sys.path.insert(0, str(tree))
    try:
        cases = load_cases(tree, json.loads(drafts_file.read_text(encoding="utf-8")))
    except Exception as error:  # any failure to load is reported the same way: as one line
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return CANNOT_LOAD
    print("ready", flush=True)
    for line in sys.stdin:
        started = time.perf_counter()
        cases[line.strip()]()
        print(time.perf_counter() - started, flush=True)
    return 0


def load_cases(tree: Path, drafts: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    """The redline cases of the tree's exporters, each what an export does once it has the drafts:
    compare them, then write the file."""
    import codedraft
    from codedraft.exports import compare, docx_redline, model, redline

    if not Path(codedraft.__file__).resolve().is_relative_to(tree):
        raise ImportError(f"codedraft came from {codedraft.__file__}, not from {tree}")
    old, new = (as_document(model, drafts[side]) for side in ("old", "new"))
    return {
        "redline_html": lambda: redline.export_redline_html(compare.compare_documents(old, new)),
        "redline_docx": lambda: docx_redline.export_redline_docx(compare.compare_documents(old, new)),
    }


def as_document(model: Any, data: dict[str, Any]) -> Any:
    """The tree's ExportDocument from plain data, through the tree's own dataclasses."""
    chapters = tuple(
        with_known_fields(model.ExportChapter, {
            **chapter, "clauses": tuple(with_known_fields(model.ExportClause, c) for c in chapter["clauses"]),
        })
        for chapter in data["chapters"]
    )
    generated_at = datetime.fromisoformat(data["generated_at"])
    return with_known_fields(model.ExportDocument, {**data, "chapters": chapters, "generated_at": generated_at})


def with_known_fields(cls: Any, values: dict[str, Any]) -> Any:
    # An older model lacks fields added since (the document's words, say): they are left out,
    # and a field the bench does not give takes the model's default.
    known = {field.name for field in dataclasses.fields(cls)}
    return cls(**{name: value for name, value in values.items() if name in known})


if __name__ == "__main__":
    raise SystemExit(main())
