"""Owner routing (the measured alternative to the clause feed, codedraft/scaleout/routing.py): a
process answers the join of a clause another process owns with that process's URL."""
from __future__ import annotations

from codedraft.scaleout.routing import owner_of


def test_every_process_names_the_same_owner_and_clauses_spread():
    urls = ["http://a:1", "http://b:2", "http://c:3"]
    owners = [owner_of(f"clause-{n}", urls) for n in range(300)]
    assert owners == [owner_of(f"clause-{n}", list(urls)) for n in range(300)]
    assert {url: owners.count(url) > 50 for url in urls} == {url: True for url in urls}


def test_a_join_elsewhere_is_redirected_to_the_owner_and_the_owner_serves_it(app, stage):
    namespace = app.extensions["codedraft_collab_namespace"]
    elsewhere = "http://owner.elsewhere.test"
    here = "http://here.test"
    # The owner is chosen by position in the list, so order the list to make `elsewhere` own it.
    urls = [here, elsewhere] if owner_of(stage.clause.uid, [here, elsewhere]) == elsewhere else [elsewhere, here]
    assert owner_of(stage.clause.uid, urls) == elsewhere
    namespace.route_urls, namespace.route_self = urls, here
    try:
        client = stage.client("chair")
        ack = client.join(stage.clause.uid)
        assert ack == {"ok": False, "error": "This clause is served by another process.", "redirect": elsewhere}
        namespace.route_self = elsewhere  # this process is the owner now
        assert client.join(stage.clause.uid)["ok"]
    finally:
        namespace.route_urls = namespace.route_self = None
