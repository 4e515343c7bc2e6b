"""Numbers typed by people or read from files are read one way (codedraft/numbers.py).

``str.isdigit`` is true for "²" and "١٢": ``int("²")`` raised, and "?page=²" on the search page was
a 500. The source test keeps the class out: no other module may decide by ``isdigit``.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from codedraft.codes.models import WorkingGroup
from codedraft.extensions import db
from codedraft.numbers import MAX_INTEGER, stored_integer
from tests.conftest import csrf_token

PACKAGE = Path(__file__).resolve().parents[1] / "codedraft"


@pytest.mark.parametrize(("raw", "number"), [
    ("12", 12), (" 12 ", 12), ("0", 0), (str(MAX_INTEGER), MAX_INTEGER),
    (str(MAX_INTEGER + 1), None), ("9" * 40, None), ("²", None), ("¹²³", None), ("١٢", None), ("٣", None),
    ("1_000", None), ("+5", None), ("-1", None), ("1e3", None), ("", None), (None, None), ("\x00", None),
])
def test_a_number_is_ascii_digits_that_a_column_holds(raw, number):
    assert stored_integer(raw) == number


def test_no_module_reads_a_number_by_isdigit():
    found = [f"{path.relative_to(PACKAGE.parent)}:{line_number}"
             for path in PACKAGE.rglob("*.py") if path.name != "numbers.py"
             for line_number, line in enumerate(path.read_text().splitlines(), 1)
             if re.search(r"\.isdigit\(\)", line)]
    assert found == [], "read numbers with codedraft.numbers.stored_integer"


@pytest.mark.parametrize("page", ["²", "١٢", "9" * 30, "-3"])
def test_a_search_page_number_of_any_shape_is_no_error(client, make_user, make_code, sign_in, page):
    make_code()
    user = make_user(office=True)
    db.session.commit()
    sign_in(user)
    response = client.get("/search", query_string={"q": "model", "page": page})
    assert response.status_code == 200


@pytest.mark.parametrize("group", ["²", "١", "9" * 30, "x", "-1"])
def test_a_working_group_that_is_no_number_of_this_code_is_refused_and_nothing_added(
        client, make_user, make_code, sign_in, group):
    code = make_code()
    office = make_user(office=True)
    db.session.add(WorkingGroup(code=code, name="WG A"))
    db.session.commit()
    sign_in(office)
    token = csrf_token(client, "/")
    chapters = len(code.chapters)
    response = client.post(f"/codes/{code.slug}/chapters",
                           data={"title": "Copyright", "working_group": group, "csrf_token": token})
    assert response.status_code == 400
    assert "There is no such working group in this code." in response.get_data(as_text=True)
    db.session.expire_all()
    assert len(code.chapters) == chapters
    # "—" (no working group) is still a choice.
    response = client.post(f"/codes/{code.slug}/chapters",
                           data={"title": "Copyright", "working_group": "", "csrf_token": token})
    assert response.status_code == 302
