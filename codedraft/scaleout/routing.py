"""Owner routing: each clause served by one process, chosen by a stable hash of its uid.

The alternative to the clause feed that docs/deploy.md measures (as Etherpad and HedgeDoc keep
one process per pad): with ``COLLAB_ROUTE_URLS`` (every process's URL, the same list and order
everywhere) and ``COLLAB_ROUTE_SELF``, a process answers a ``join`` of a clause it does not own
with ``{ok: false, redirect: <owner's URL>}`` and the client connects there. Only the owner holds
the clause's document, so no process needs another's edits. It is not what is deployed: there
the clause feeds keep every process able to serve every clause, and deploy/nginx.conf routes
everything about a clause to one process, which gives the same cost per edit without
redirects, forwarding or re-homing (docs/deploy.md, "Several processes").
"""
from __future__ import annotations

import hashlib


def owner_of(clause_uid: str, urls: list[str]) -> str:
    """The URL of the process that owns ``clause_uid``: the same answer in every process."""
    digest = hashlib.sha1(clause_uid.encode(), usedforsecurity=False).digest()
    return urls[int.from_bytes(digest[:8], "big") % len(urls)]
