"""Small server-rendered charts: one stacked bar per clause, comments by stakeholder category.

Pure (no Flask): returns SVG markup with every text escaped. The bar is an image with a text
equivalent (``role="img"`` and an ``aria-label`` listing the counts), so a screen reader hears
the numbers the eye sees; colours come with a legend and the numbers are printed beside it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

# Distinguishable colours, each at least 3:1 against white (WCAG 1.4.11, non-text contrast).
PALETTE: tuple[str, ...] = (
    "#0b57d0", "#b3261e", "#1b6e3a", "#8a4baf", "#a15c00", "#00677d", "#6c5f00", "#c2185b", "#4a4a4a",
)


def colour_of(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def stacked_bar(counts: Mapping[str, int], categories: Sequence[tuple[str, str]], *, scale_max: int,
                width: int = 240, height: int = 14) -> str:
    """An inline SVG bar of ``counts`` (category key -> number), segments in ``categories``
    order, scaled so that ``scale_max`` comments fill ``width`` pixels."""
    total = sum(counts.get(key, 0) for key, _label in categories)
    parts = [f"{label}: {counts[key]}" for key, label in categories if counts.get(key)]
    label = f"{total} comments" + (f" ({', '.join(parts)})" if parts else "")
    rects: list[str] = []
    x = 0.0
    per_comment = width / max(scale_max, 1)
    for index, (key, category_label) in enumerate(categories):
        count = counts.get(key, 0)
        if not count:
            continue
        w = count * per_comment
        rects.append(
            f'<rect x="{x:.2f}" y="0" width="{w:.2f}" height="{height}" fill="{colour_of(index)}">'
            f"<title>{escape(category_label)}: {count}</title></rect>"
        )
        x += w
    return (
        f'<svg class="fb-bar" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">'
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#f3f5f8"></rect>{"".join(rects)}</svg>'
    )


def legend_swatch(index: int, size: int = 12) -> str:
    """A colour square for the legend (decorative: the legend's text says the category)."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" aria-hidden="true">'
            f'<rect width="{size}" height="{size}" fill="{colour_of(index)}"></rect></svg>')
