"""PDF exports, rendered by WeasyPrint from the standalone HTML exports.

WeasyPrint would fetch any URL a document names (images, stylesheets, ``file://`` paths,
cloud metadata endpoints). :class:`AppAssetFetcher` refuses every URL except assets the app hands
over explicitly, and records what it was asked, so a clause holding
``<img src=file:///etc/passwd>`` or a link to ``http://169.254.169.254/`` fetches nothing
(SECURITY-CASES 25). Links stay links in the PDF; WeasyPrint does not fetch them.
Needs Pango at run time (Debian: ``libpango-1.0-0 libpangoft2-1.0-0``).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from weasyprint import HTML
from weasyprint.urls import URLFetcher, URLFetcherResponse

from .compare import Comparison
from .docx_redline import export_redline_docx
from .feedback_export import export_feedback_report_html
from .html_export import export_html
from .htmlkit import PRINT_CSS_PATH
from .model import ExportDocument, FeedbackRow, MarkdownRenderer
from .redline import RedlineLayout, export_redline_html

logger = logging.getLogger(__name__)


class RefusedFetch(PermissionError):
    """The PDF renderer asked for a URL that is not one of the app's assets."""


@dataclass(frozen=True)
class Asset:
    """Bytes the app provides to the PDF renderer under a fixed URL."""

    body: bytes
    mime_type: str


class AppAssetFetcher(URLFetcher):  # type: ignore[misc]  # WeasyPrint is untyped
    """A WeasyPrint URL fetcher that serves only the given assets and refuses everything else.

    ``requested`` lists every URL WeasyPrint asked for, ``refused`` those it was denied; the
    refusal raises :class:`RefusedFetch`, which WeasyPrint logs and renders around (an image
    becomes its alt text).
    """

    def __init__(self, assets: Mapping[str, Asset] | None = None) -> None:
        # No protocol is allowed to the base class; fetch() below never calls it anyway.
        super().__init__(allowed_protocols=(), allow_redirects=False, timeout=1)
        self.assets: dict[str, Asset] = dict(assets or {})
        self.requested: list[str] = []
        self.refused: list[str] = []

    def fetch(self, url: str, headers: object = None) -> URLFetcherResponse:
        self.requested.append(url)
        asset = self.assets.get(url)
        if asset is None:
            self.refused.append(url)
            logger.info("PDF export refused to fetch %.200r", url)
            raise RefusedFetch(f"not an app asset: {url[:200]}")
        return URLFetcherResponse(url, asset.body, {"Content-Type": asset.mime_type})


#: The one URL under which the PDF renderer may load anything: the export stylesheet.
PRINT_CSS_URL = "codedraft-asset:print.css"


def app_asset_fetcher() -> AppAssetFetcher:
    """The fetcher the app uses for every PDF: it serves static/css/print.css under
    :data:`PRINT_CSS_URL` and refuses every other URL (file://, http(s)://, data:...)."""
    return AppAssetFetcher({PRINT_CSS_URL: Asset(PRINT_CSS_PATH.read_bytes(), "text/css")})


def html_to_pdf(html: str, *, fetcher: AppAssetFetcher | None = None) -> bytes:
    """Render a standalone HTML page to PDF bytes; only ``fetcher``'s assets can be loaded.

    No base URL is given, so a relative URL cannot resolve to the server's files.
    """
    pdf: bytes = HTML(string=html, base_url=None, url_fetcher=fetcher or AppAssetFetcher()).write_pdf()
    return pdf


def export_pdf(
    document: ExportDocument,
    render_markdown: MarkdownRenderer,
    *,
    fetcher: AppAssetFetcher | None = None,
) -> bytes:
    """The consolidated draft as PDF, with a table of contents carrying page numbers."""
    return html_to_pdf(export_html(document, render_markdown), fetcher=fetcher)


def export_redline_pdf(
    comparison: Comparison,
    *,
    layout: RedlineLayout = RedlineLayout.INLINE,
    changed_only: bool = False,
    fetcher: AppAssetFetcher | None = None,
) -> bytes:
    """The redline between two drafts as PDF (side by side is laid out on landscape pages)."""
    html = export_redline_html(comparison, layout=layout, changed_only=changed_only)
    return html_to_pdf(html, fetcher=fetcher)


def export_feedback_report_pdf(
    rows: Sequence[FeedbackRow],
    *,
    code_title: str,
    draft_label: str,
    language: str = "en",
    categories: Sequence[str] | None = None,
    fetcher: AppAssetFetcher | None = None,
    words: Mapping[str, str] | None = None,
) -> bytes:
    """The feedback report (chart, counts, disposition annex) as PDF."""
    html = export_feedback_report_html(
        rows, code_title=code_title, draft_label=draft_label, language=language, categories=categories, words=words
    )
    return html_to_pdf(html, fetcher=fetcher)


class ConversionFailed(RuntimeError):
    """LibreOffice is missing, timed out or wrote no PDF."""


def libreoffice_binary() -> str | None:
    """Path of ``soffice`` (Debian: libreoffice-writer-nogui), or None when not installed."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def docx_to_pdf(docx: bytes, *, timeout: float = 120.0) -> bytes:
    """Convert .docx bytes to PDF with headless LibreOffice; raises :class:`ConversionFailed`.

    Each conversion gets its own throw-away LibreOffice profile, so two exports at once never
    share (and lock) one. The documents CodeDraft writes hold text only: no images, no linked
    files, no hyperlink relationships, so LibreOffice has nothing to fetch (SECURITY-CASES 25).
    """
    binary = libreoffice_binary()
    if binary is None:
        raise ConversionFailed("LibreOffice (soffice) is not installed")
    with tempfile.TemporaryDirectory(prefix="codedraft-soffice-") as folder:
        work = Path(folder)
        source = work / "export.docx"
        source.write_bytes(docx)
        command = [
            binary, "--headless", "--norestore", "--nolockcheck",
            f"-env:UserInstallation={(work / 'profile').as_uri()}",
            "--convert-to", "pdf", "--outdir", str(work), str(source),
        ]
        try:
            subprocess.run(command, check=True, capture_output=True, timeout=timeout)
        except (subprocess.SubprocessError, OSError) as error:
            raise ConversionFailed(f"LibreOffice could not convert the document: {type(error).__name__}") from error
        target = work / "export.pdf"
        if not target.exists():
            raise ConversionFailed("LibreOffice wrote no PDF")
        return target.read_bytes()


def export_redline_pdf_via_docx(comparison: Comparison, *, timeout: float = 120.0) -> bytes:
    """The redline as PDF laid out by LibreOffice from the redline DOCX written for print:
    insertions green and underlined, deletions red and struck through (tracked changes would be
    coloured by author, one colour for both kinds).

    About 3 s for the draft 2 -> 3 redline where WeasyPrint needs 7-9 s. No table of contents:
    page numbers would need a field update LibreOffice does not run while converting.
    """
    return docx_to_pdf(export_redline_docx(comparison, include_toc=False, marks="print"), timeout=timeout)
