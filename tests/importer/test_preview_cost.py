"""The preview page asks every clause how deep it sits and which old clauses it may continue:
those answers come from maps built once per preview, not from a walk of the whole document per
clause (a Markdown file of 25,000 clauses kept a server thread busy for minutes)."""
from __future__ import annotations

from codedraft.importer.preview import ImportPreview, preview_text


def test_depth_reads_the_document_once_however_many_clauses_ask(monkeypatch):
    markdown = "\n\n".join(f"# Chapter {n}\n\n## Commitment {n} Title\n\nText {n}.\n\n### Measure {n}.1 Step\n\nMore."
                           for n in range(1, 201))
    preview = preview_text(markdown, None)
    assert preview.document is not None
    every_clause = preview.document.clauses()
    document_type = type(preview.document)
    unread = document_type.clauses
    calls = 0

    def counted(document):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return unread(document)

    monkeypatch.setattr(document_type, "clauses", counted)
    depths = [preview.depth(clause.key) for clause in every_clause]
    assert calls == 1
    assert max(depths) >= 1 and min(depths) == 0  # a measure sits under its commitment


def test_candidates_are_the_old_clauses_of_the_same_family():
    from codedraft.importer.matching import OldClause

    old = [OldClause(stable_id=f"id{n}", kind=kind, number=str(n), title=f"T{n}", body="b")
           for n, kind in enumerate(["section", "commitment", "glossary", "measure"])]
    preview = ImportPreview(None, old=old)
    assert [c.stable_id for c in preview.candidates("glossary")] == ["id0", "id2"]
    assert [c.stable_id for c in preview.candidates("section")] == ["id0", "id2"]
    assert [c.stable_id for c in preview.candidates("commitment")] == ["id1"]
    assert preview.candidates("recital") == []
