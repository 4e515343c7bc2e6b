"""The names one deployment uses on a shared Redis.

Every process of a deployment shares its database, so the database URL names the deployment:
two deployments, or two test runs, on one Redis never read each other's clause 1, presence,
rate-limit counters or Socket.IO broadcasts. ``REDIS_KEY_PREFIX`` (``CODEDRAFT_REDIS_KEY_PREFIX``)
names it explicitly instead.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any


def prefix_for_database(database_url: str) -> str:
    return "codedraft:" + hashlib.sha256(database_url.encode()).hexdigest()[:12]


def key_prefix(config: Mapping[str, Any]) -> str:
    return config.get("REDIS_KEY_PREFIX") or prefix_for_database(config["SQLALCHEMY_DATABASE_URI"])
