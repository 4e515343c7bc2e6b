"""One export job in a process of its own: ``python -m codedraft.exports.child JOB_ID``.

The production server (gunicorn's gevent worker) starts one of these per job rather than laying
out a PDF in its own process, where seconds of CPU would stall every co-editing socket. The job
row carries everything the job needs; progress and the result are written exactly as in-process.
"""
from __future__ import annotations

import sys

from codedraft import create_app
from codedraft.exports.jobs import run_job


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m codedraft.exports.child JOB_ID", file=sys.stderr)
        return 2
    run_job(create_app(), argv[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
