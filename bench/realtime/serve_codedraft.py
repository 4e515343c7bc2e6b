"""CodeDraft for the real-time benchmark: the production server (threading, TCP_NODELAY) over
the benchmark's SQLite file, with HTTP rate limits off so hundreds of simulated people can sign
in from one address. Socket flood control (60 messages/s per socket) stays on.

    SECRET_KEY=... DATABASE_URL=sqlite:///... python bench/realtime/serve_codedraft.py --port N
"""
from __future__ import annotations

import argparse

from codedraft import create_app
from codedraft.server import serve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    options = parser.parse_args()
    app = create_app({"RATELIMIT_ENABLED": False})
    serve(app, host="127.0.0.1", port=options.port, quiet=True)


if __name__ == "__main__":
    main()
