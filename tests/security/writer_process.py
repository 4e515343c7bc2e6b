"""A second CodeDraft process for SECURITY-CASE 23: it writes through its own app object, on the
same SQLite file and search index as the test's process, so the two contend for Whoosh's lock.

    python -m tests.security.writer_process <tmp_path> <email> <feedback url> <count>

Signs in as <email>, prints "ready", waits for a line on stdin, posts <count> comments (each
with the word "procword"), then prints their status codes as one JSON line.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from codedraft import create_app
from tests.conftest import FreshContextClient, app_config, csrf_token, login


def post_comments(tmp_path: Path, email: str, feedback_url: str, count: int) -> list[int]:
    app = create_app(app_config(tmp_path, FEEDBACK_POST_LIMIT="10000 per minute"))
    app.test_client_class = FreshContextClient
    client = app.test_client()
    assert login(client, email).status_code == 302
    token = csrf_token(client, "/")
    print("ready", flush=True)
    sys.stdin.readline()
    return [
        client.post(feedback_url, data={"body": f"procword {i} from the second process", "csrf_token": token},
                    headers={"X-Requested-With": "fetch"}).status_code
        for i in range(count)
    ]


if __name__ == "__main__":
    statuses = post_comments(Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]))
    print(json.dumps(statuses), flush=True)
