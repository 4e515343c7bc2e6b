"""Standalone HTML, Markdown export and its round trip, and the HTML redlines."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from codedraft.exports.compare import compare_documents
from codedraft.exports.html_export import export_html
from codedraft.exports.markdown_export import export_markdown, parse_markdown_export
from codedraft.exports.redline import RedlineLayout, export_redline_html, render_inline

HOSTILE = "<script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1))\n\n# Body heading\n\nText."


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.tags: list[str] = []
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        values = dict(attrs)
        if "id" in values:
            self.ids.append(values["id"])
        if tag == "a" and values.get("href"):
            self.hrefs.append(values["href"])
        for name in ("src", "srcset", "data"):
            if values.get(name):
                self.sources.append(values[name])
        if tag == "link":
            self.sources.append(values.get("href", ""))


def _collect(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    return collector


def test_html_has_toc_anchors_and_prefixed_ids(make_clause, make_document, render_markdown) -> None:
    document = make_document(
        (
            "transparency",
            [
                make_clause("__proto__", number="I.1", title="Documentation", body_markdown=HOSTILE),
                make_clause("csrf_token", number="I.1.1", title="Keep <it>", parent_uid="__proto__", position=1),
            ],
        )
    )
    html = export_html(document, render_markdown)
    found = _collect(html)
    assert "__proto__" not in found.ids and "csrf_token" not in found.ids
    assert all(i.startswith(("clause-", "chapter-", "toc-")) for i in found.ids)
    assert len(found.ids) == len(set(found.ids))
    # Every table-of-contents link points at an element of the page.
    internal = [h[1:] for h in found.hrefs if h.startswith("#")]
    assert internal and set(internal) <= set(found.ids)
    # Numbering is in the headings; user text is escaped, not executed.
    assert re.search(r"<h3><span class=\"clause-number\">I\.1</span> Documentation</h3>", html)
    assert '<h4><span class="clause-number">I.1.1</span> Keep &lt;it&gt;</h4>' in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "javascript:" not in "".join(found.hrefs)
    # The body heading sits under the clause heading (h3), not at h1.
    assert "<h4>Body heading</h4>" in html
    assert found.tags.count("h1") == 1


def test_html_is_standalone(draft3, render_markdown) -> None:
    html = export_html(draft3, render_markdown)
    found = _collect(html)
    assert "link" not in found.tags and "script" not in found.tags
    assert all(src.startswith("data:") for src in found.sources)
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert "@media print" in html and "@page" in html  # print stylesheet embedded
    assert 'lang="en"' in html


def test_markdown_round_trips(draft3) -> None:
    text = export_markdown(draft3)
    assert text.count("\n## ") == len(draft3.chapters)
    back = parse_markdown_export(text)
    assert back == draft3


def test_markdown_round_trips_awkward_titles(make_clause, make_document) -> None:
    document = make_document(
        (
            "weird key (1)",
            [
                make_clause("a b", number="", title="Ends with #", body_markdown="# inner heading\n\n(x)"),
                make_clause("(", number="2.1", title="2.1 starts like a number", parent_uid="a b", position=1),
                make_clause("ü/é", number="3", title="Line\nbreak", body_markdown=""),
            ],
        )
    )
    back = parse_markdown_export(export_markdown(document))
    clauses = list(back.chapters[0].clauses)
    assert [c.uid for c in clauses] == ["a b", "(", "ü/é"]
    assert clauses[0].title == "Ends with #"
    assert clauses[0].body_markdown == "# inner heading\n\n(x)"
    assert clauses[1].title == "2.1 starts like a number" and clauses[1].parent_uid == "a b"
    assert clauses[2].title == "Line break"  # a heading cannot hold a line break
    assert back.chapters[0].key == "weird key (1)"


def test_inline_redline_marks_changes_accessibly(make_clause, make_document) -> None:
    old = make_document(("ch", [make_clause("a", body_markdown="Keep <b>old</b> records.")]), label="Second Draft")
    new = make_document(("ch", [make_clause("a", body_markdown="Keep <b>new</b> records.")]), label="Third Draft")
    html = render_inline(compare_documents(old, new))
    assert '<del class="redline-del"><span class="visually-hidden">[deleted: </span>' in html
    assert '<ins class="redline-ins"><span class="visually-hidden">[inserted: </span>' in html
    assert "&lt;b&gt;" in html and "<b>" not in html  # diffed source text is escaped
    assert "Text changed" in html


def test_redline_html_layouts(draft2, draft3) -> None:
    comparison = compare_documents(draft2, draft3)
    inline = export_redline_html(comparison)
    side = export_redline_html(comparison, layout=RedlineLayout.SIDE_BY_SIDE)
    assert inline.count("<ins") > 100 and inline.count("<del") > 100
    assert '<th scope="col">Second Draft</th><th scope="col">Third Draft</th>' in side
    rows = re.findall(r"<tr class=\"redline-clause--", side)
    assert len(rows) == len(comparison.clauses)
    # Old column never shows insertions, new column never deletions.
    for row in re.findall(r"<tr class=\"redline-clause--[^\"]+\"[^>]*>(.*?)</tr>", side, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        assert len(cells) == 2
        assert "<ins" not in cells[0] and "<del" not in cells[1]
    changed_only = export_redline_html(comparison, changed_only=True)
    assert len(changed_only) <= len(inline)
