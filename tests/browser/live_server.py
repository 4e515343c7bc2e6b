"""A CodeDraft server in its own process, for browser tests that SIGKILL and restart it.

    python -m tests.browser.live_server --port 5123

Configuration comes from the environment (SECRET_KEY, DATABASE_URL, ...), as in production;
the co-editing panel is installed here in case the app factory does not install it yet.
"""
from __future__ import annotations

import argparse

from codedraft import create_app
from codedraft.collab import install
from codedraft.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    options = parser.parse_args()
    app = create_app()
    install(app)
    serve(app, host=options.host, port=options.port, quiet=True)


if __name__ == "__main__":
    main()
