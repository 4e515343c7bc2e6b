"""CodeDraft for the real-time benchmark, over the benchmark's SQLite file, with HTTP rate limits
off so hundreds of simulated people can sign in from one address. Socket flood control (60
messages/s per socket) stays on.

The production server (what the benchmark measures by default): gunicorn's gevent worker with
gunicorn.conf.py, loading ``app`` from this module:

    SECRET_KEY=... DATABASE_URL=sqlite:///... CODEDRAFT_BIND=127.0.0.1:N \\
        CODEDRAFT_BENCH_APP=1 gunicorn -c gunicorn.conf.py bench.realtime.serve_codedraft:app

The development server (Werkzeug threads, what `make run` serves), for comparison:

    SECRET_KEY=... DATABASE_URL=sqlite:///... python bench/realtime/serve_codedraft.py --port N
"""
from __future__ import annotations

import argparse
import os

from codedraft import create_app
from codedraft.server import serve

# Built on import only for gunicorn (the benchmark sets CODEDRAFT_BENCH_APP=1), whose gevent worker
# imports this module after patching; the development server builds its own in main().
app = create_app({"RATELIMIT_ENABLED": False}) if os.environ.get("CODEDRAFT_BENCH_APP") else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    options = parser.parse_args()
    serve(create_app({"RATELIMIT_ENABLED": False}), host="127.0.0.1", port=options.port, quiet=True)


if __name__ == "__main__":
    main()
