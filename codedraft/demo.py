"""The demo code of practice: our own text, three chapters, about twenty clauses."""
from __future__ import annotations

from sqlalchemy import select

from codedraft.accounts import operations as accounts
from codedraft.codes import operations as codes
from codedraft.codes.models import Code, Role
from codedraft.drafts.operations import publish_draft

DEMO_SLUG = "demo-model-release-code"
DEMO_PASSWORD = "codedraft-demo-2026"

# email, name, role on the code, (organisation, category) or None
DEMO_PEOPLE: tuple[tuple[str, str, str, tuple[str, str] | None], ...] = (
    ("office@demo.test", "Olga Office", "admin", None),
    ("chair.open@demo.test", "Chiara Chair", "chair", ("Lakeside University", "academia")),
    ("chair.safety@demo.test", "Sam Chair", "chair", ("Northbridge Institute", "academia")),
    ("member@demo.test", "Mira Member", "member", ("Open Weights Collective", "open-source")),
    ("provider@demo.test", "Piotr Provider", "reviewer", ("Modelworks Ltd", "provider")),
    ("civil@demo.test", "Celine Civil", "reviewer", ("Digital Rights Watch", "civil-society")),
    ("academic@demo.test", "Ada Academic", "reviewer", ("Lakeside University", "academia")),
    ("observer@demo.test", "Otto Observer", "observer", None),
)

# chapter title, working group, clauses: (kind, number, title, body, parent number or "")
DEMO_CHAPTERS: tuple[tuple[str, str, tuple[tuple[str, str, str, str, str], ...]], ...] = (
    ("Openness", "Working Group 1: Openness", (
        ("section", "", "Purpose of this chapter",
         "This chapter sets out how signatories describe the models they release, so that people "
         "who build on them can judge what they are getting.", ""),
        ("commitment", "1", "Model cards",
         "Signatories **commit** to publishing a model card for every model they make available "
         "to others, and to keeping it current for as long as the model is offered.", ""),
        ("measure", "1.1", "Content of a model card",
         "A model card states at least:\n\n- the intended uses and the uses the provider advises against;\n"
         "- the data sources in broad categories;\n- known limitations, including languages the model handles poorly;\n"
         "- the date of the last substantive update.", "1"),
        ("measure", "1.2", "Plain language",
         "The card is written so that a reader without machine-learning training understands the "
         "intended uses and the main limitations. Technical detail goes in an annex.", "1"),
        ("measure", "1.3", "Versioning",
         "Each card names the model version it describes. Older cards stay available.", "1"),
        ("commitment", "2", "Release notes",
         "Signatories commit to describing material changes between versions of a model.", ""),
        ("measure", "2.1", "What counts as material",
         "A change is material where it alters the intended uses, the evaluation results reported "
         "in the card by more than the stated margin, or the data sources.", "2"),
    )),
    ("Data stewardship", "Working Group 2: Data stewardship", (
        ("commitment", "3", "Respecting reservations",
         "Signatories commit to honouring machine-readable reservations of rights when they collect "
         "training data from the web.", ""),
        ("measure", "3.1", "Crawler identification",
         "Crawlers identify themselves with a stable name and a page explaining their purpose.", "3"),
        ("measure", "3.2", "Reservation formats",
         "Signatories follow widely used reservation formats and document which formats they read.", "3"),
        ("measure", "3.3", "Complaints",
         "A point of contact receives complaints from rightsholders and answers within a reasonable time.", "3"),
        ("commitment", "4", "Data provenance",
         "Signatories commit to recording where their training data came from, in a form that allows "
         "an auditor to trace a sample back to its source category.", ""),
        ("measure", "4.1", "Provenance records",
         "Records are kept for the lifetime of the model plus five years.", "4"),
    )),
    ("Safety and incident response", "Working Group 3: Safety", (
        ("commitment", "5", "Pre-release testing",
         "Signatories commit to testing a model for foreseeable misuse before they release it, in "
         "proportion to its capabilities.", ""),
        ("measure", "5.1", "Test plan",
         "A written test plan lists the risks considered, the methods used and who carried them out.", "5"),
        ("measure", "5.2", "External testers",
         "Where the risks warrant it, testers independent of the development team take part. They "
         "shall not be prevented from reporting what they find.", "5"),
        ("commitment", "6", "Incident reporting",
         "Signatories commit to reporting serious incidents to the Office without undue delay.", ""),
        ("measure", "6.1", "Timelines",
         "An initial report follows within fifteen days of the signatory becoming aware of a serious "
         "incident; a full report follows when the investigation ends.", "6"),
        ("measure", "6.2", "Protection of reporters",
         "Staff who report concerns in good faith are not penalised for doing so.", "6"),
        ("glossary", "", "Serious incident",
         "An event in which the use of a model directly or indirectly leads to significant harm to "
         "people, property or the environment.", ""),
    )),
)


def seed_demo() -> bool:
    """Create the demo once. Returns False when it is there already (running again keeps data)."""
    from codedraft.extensions import db

    if db.session.scalar(select(Code).where(Code.slug == DEMO_SLUG)) is not None:
        return False
    code = codes.create_code(
        "Demo Code of Practice for Model Releases", slug=DEMO_SLUG,
        summary="A small code written for trying CodeDraft out: three chapters, one published draft.",
    )
    groups = {}
    for title, group_name, clauses in DEMO_CHAPTERS:
        group = codes.add_working_group(code, group_name)
        groups[title] = group
        chapter = codes.add_chapter(code, title, working_group=group)
        parents = {}
        for kind, number, clause_title, body, parent_number in clauses:
            clause = codes.add_clause(chapter, kind=kind, number=number, title=clause_title, body=body,
                                      parent=parents.get(parent_number))
            if kind == "commitment":
                parents[number] = clause
    for email, name, role, organisation in DEMO_PEOPLE:
        org = accounts.get_or_create_organisation(*organisation) if organisation else None
        user = accounts.create_user(email, name, DEMO_PASSWORD, organisation=org, is_office=role == "admin")
        if role == "chair":
            group = groups["Openness"] if "open" in email else groups["Safety and incident response"]
            accounts.grant_role(user, code, Role.reviewer)
            accounts.grant_role(user, code, Role.chair, group)
        elif role != "admin":
            accounts.grant_role(user, code, Role[role])
    publish_draft(code, "First Draft", note="The first text put to stakeholders.")
    return True
