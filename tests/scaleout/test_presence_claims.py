"""SECURITY-CASES 34 with several processes: an awareness client id belongs to one account in all
of them, through the real Redis they share."""
from __future__ import annotations

import uuid

from codedraft.collab.presence import MemoryClaimBook
from codedraft.scaleout.presence_claims import RedisClaimBook
from tests.scaleout import cluster as cl
from tests.scaleout.conftest import _require_services


def test_a_client_id_claimed_through_one_process_is_refused_to_another_account_in_the_other():
    _require_services()
    first, second = RedisClaimBook(cl.redis_url(), "codedraft:test"), RedisClaimBook(cl.redis_url(), "codedraft:test")
    clause = f"clause-{uuid.uuid4().hex}"
    assert first.claim(clause, 4242, user_id=1)
    assert second.claim(clause, 4242, user_id=1)  # the same person, through the other process
    assert not second.claim(clause, 4242, user_id=2)
    assert first.owner(clause, 4242) == second.owner(clause, 4242) == 1
    assert first.owner(clause, 4343) is None
    second.release(clause, 4242, user_id=2)  # not theirs: changes nothing
    assert not first.claim(clause, 4242, user_id=2)
    first.release(clause, 4242, user_id=1)
    assert second.claim(clause, 4242, user_id=2)
    assert second.claim(f"{clause}-other", 4242, user_id=3)  # ids are per clause


def test_the_memory_claim_book_keeps_the_same_rules():
    book = MemoryClaimBook()
    assert book.claim("c", 1, user_id=1) and book.claim("c", 1, user_id=1)
    assert not book.claim("c", 1, user_id=2)
    assert book.owner("c", 1) == 1 and book.owner("c", 2) is None
    book.release("c", 1, user_id=2)
    assert not book.claim("c", 1, user_id=2)
    book.release("c", 1, user_id=1)
    assert book.claim("c", 1, user_id=2)
