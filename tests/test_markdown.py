"""The one Markdown renderer against hostile input: SECURITY-CASES 17-20."""
from __future__ import annotations

import time

import pytest

from codedraft.markdown import render_markdown


@pytest.mark.parametrize(
    "payload",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        '<iframe src="https://evil.example"></iframe>',
        '<svg onload="alert(1)"><circle/></svg>',
        "Text <b onclick=alert(1)>bold</b>",
    ],
)
def test_case_17_raw_html_is_shown_as_text(payload):
    html = render_markdown(payload)
    assert "<script" not in html and "<iframe" not in html and "<svg" not in html and "<img" not in html
    assert "onerror=" not in html.replace("&quot;", '"').lower() or "&lt;" in html
    assert "&lt;" in html  # the markup survives as visible text


@pytest.mark.parametrize(
    "link",
    [
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](javascript&#58;alert(1))",
        "[x](vbscript:msgbox(1))",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[x](&#x6A;avascript:alert(1))",
        "<javascript:alert(1)>",
        "![x](javascript:alert(1))",
    ],
)
def test_case_18_no_live_script_links(link):
    html = render_markdown(link).lower()
    assert 'href="javascript' not in html and 'href="vbscript' not in html and 'href="data:' not in html
    assert 'src="javascript' not in html


def test_safe_links_survive():
    html = render_markdown("[the Act](https://eur-lex.europa.eu/eli/reg/2024/1689/oj)")
    assert 'href="https://eur-lex.europa.eu/eli/reg/2024/1689/oj"' in html
    assert "noopener" in html


@pytest.mark.parametrize("title", ["__proto__", "csrf_token", "constructor"])
def test_case_19_heading_ids_are_prefixed(title):
    html = render_markdown(f"# {title}\n\n## {title}")
    assert f'id="{title}"' not in html
    assert 'id="md-' in html


@pytest.mark.parametrize(
    "payload",
    ["> " * 100_000, "[" * 100_000, "*" * 100_000, "a" * 1_000_000, "- " * 50_000 + "x", "`" * 100_000],
)
def test_case_20_hostile_structure_renders_in_bounded_time(payload):
    started = time.perf_counter()
    html = render_markdown(payload)
    assert time.perf_counter() - started < 30  # bounded: quadratic parsing of these took minutes
    assert isinstance(html, str)
