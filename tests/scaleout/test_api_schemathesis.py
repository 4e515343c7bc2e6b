"""Property-based check of /api/v1 against its own OpenAPI document, as a signed-in user.

Runs schemathesis in-process against the WSGI app (SQLite), with a bearer token: no response is
a 500 and every response matches the documented schema. Bounded examples keep it under a minute.
"""
from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402

from codedraft.accounts.operations import create_api_token  # noqa: E402
from codedraft.codes import operations as codes  # noqa: E402
from codedraft.extensions import db  # noqa: E402


@pytest.fixture
def api_app(app, make_code, make_user):
    code = make_code("Schema Code")
    chapter = codes.add_chapter(code, "Chapter")
    codes.add_clause(chapter, kind="commitment", number="1", title="One", body="Body 🙂.")
    user = make_user("chair", code)
    _token, secret = create_api_token(user, "schemathesis")
    db.session.commit()
    return app, secret


def test_api_matches_its_openapi_document_and_never_500s(api_app):
    app, secret = api_app
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    failures: list[str] = []
    checked = 0
    for operation in schema.get_all_operations():
        operation = operation.ok()
        if operation.method.upper() != "GET":
            continue  # reads only: writes would change what later examples see

        @settings(max_examples=15, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case):
            response = case.call_and_validate(headers={"Authorization": f"Bearer {secret}"})
            assert response.status_code < 500, (case.path, response.status_code)

        try:
            check()
            checked += 1
        except Exception as error:  # noqa: BLE001  (collect every operation's failure)
            failures.append(f"{operation.method.upper()} {operation.path}: {error}"[:600])
    assert checked + len(failures) >= 5, "the API document lists fewer GET operations than expected"
    assert not failures, "\n".join(failures)
