"""The redline keeps the clause's Markdown structure: paragraphs, lists and headings are elements,
markers are never shown, emphasis follows each side, and every word of both texts is still there."""
from __future__ import annotations

import re
from html import unescape

from codedraft.exports.compare import compare_documents, diff_words
from codedraft.exports.redline import export_redline_html, render_clause_index
from codedraft.exports.redline_blocks import Side, render_markdown_diff


def _text(html: str) -> str:
    without_hidden = re.sub(r'<span class="visually-hidden">[^<]*</span>', "", html)
    return unescape(re.sub(r"<[^>]+>", " ", without_hidden))


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


def test_paragraphs_lists_and_headings_become_elements() -> None:
    old = "Intro paragraph.\n\n#### Legal text\n\n- (1) first point\n- (2) second point\n  - (a) nested\n\nClosing."
    new = "Intro paragraph, amended.\n\n#### Legal text\n\n- (1) first point\n- (2) second, changed\n  - (a) nested\n\n1. one\n2. two"
    html = render_markdown_diff(diff_words(old, new))
    assert '<h4 class="redline-body-heading">Legal text</h4>' in html
    assert html.count("<ul>") == 2 and html.count("<ol>") == 1 and html.count("<li>") == 5
    assert "<p>Intro paragraph" in html
    assert "#" not in _text(html) and "- (" not in _text(html)
    assert '<del class="redline-del">' in html and '<ins class="redline-ins">' in html


def test_a_marker_changed_or_deleted_is_never_shown() -> None:
    html = render_markdown_diff(diff_words("### Title of the part", "Title of the part, now a paragraph"))
    assert "###" not in _text(html) and html.startswith("<p>")
    html = render_markdown_diff(diff_words("#### LEGAL TEXT\nnext", "Some new words\nnext"))
    assert "####" not in _text(html) and "LEGAL TEXT" in _text(html)


def test_emphasis_follows_each_side() -> None:
    html = render_markdown_diff(diff_words("Signatories shall commit.", "Signatories **shall** commit."))
    assert "<strong>shall</strong>" in html and "**" not in html
    html = render_markdown_diff(diff_words("a *b* c", "a b c"))
    assert "*" not in _text(html)
    assert "snake_case_name" in _text(render_markdown_diff(diff_words("keep snake_case_name", "keep snake_case_name!")))


def test_sides_show_only_their_own_text() -> None:
    diff = diff_words("- old point\n- kept", "- new point\n- kept")
    assert "new" not in _text(render_markdown_diff(diff, Side.OLD))
    assert "old" not in _text(render_markdown_diff(diff, Side.NEW))


def test_markup_is_escaped() -> None:
    html = render_markdown_diff(diff_words("<b>x</b>", "<script>alert(1)</script> **<i>**"))
    assert "<script" not in html and "<i>" not in html and "<b>" not in html
    new_side = render_markdown_diff(diff_words("<b>x</b>", "<script>alert(1)</script> **<i>**"), Side.NEW)
    assert "<script>alert(1)</script>" in _text(new_side).replace(" ", "")


def test_real_drafts_every_word_kept_and_no_markers(draft2, draft3) -> None:
    comparison = compare_documents(draft2, draft3)
    html = export_redline_html(comparison)
    assert "####" not in _text(html)
    assert html.count("<li>") > 300 and html.count('<h4 class="redline-body-heading">') >= 0
    # Every word of both drafts' bodies is in the redline, in order (markup aside).
    for clause in comparison.changed[:40]:
        both = render_markdown_diff(clause.body_diff, Side.BOTH)
        old_words = _words(_text(render_markdown_diff(clause.body_diff, Side.OLD)))
        new_words = _words(_text(render_markdown_diff(clause.body_diff, Side.NEW)))
        source_old = _words(re.sub(r"[*#_]", " ", clause.old.body_markdown)) if clause.old else []
        source_new = _words(re.sub(r"[*#_]", " ", clause.new.body_markdown)) if clause.new else []
        assert old_words == source_old and new_words == source_new
        assert len(_words(_text(both))) >= max(len(old_words), len(new_words))
    index = render_clause_index(comparison)
    assert index.count("<li") == len(comparison.changed)
    # Each changed clause links to the next one.
    assert html.count('class="redline-next"') == len(comparison.changed) - 1
