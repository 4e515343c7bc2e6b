"""Server-side edits as minimal splices: exact results, offsets that never split a character, and
concurrent edits by co-drafters that survive the splice."""

from __future__ import annotations

import random
import time
import unicodedata

import pytest
from pycrdt import Doc, Text

from codedraft.collab.minimal_edit import Edit, apply_edits, plan_edits
from codedraft.collab.offsets import codepoint_to_utf8

PIECES = ["Signatories ", "shall ", "é", "e\u0301", "😀", "👩\u200d👩\u200d👧", "🇪🇺", "\r\n",
          "条款", "measure ", "a\u0308\u0323", "x", "."]


def clause_doc(text: str) -> tuple[Doc[Text], Text]:
    doc: Doc[Text] = Doc()
    body = doc.get("body", type=Text)
    body.insert(0, text)
    return doc, body


def replay(old: str, edits: list[Edit]) -> str:
    for position, delete_count, insert_text in edits:
        old = old[:position] + insert_text + old[position + delete_count :]
    return old


def mutate(rnd: random.Random, text: str) -> str:
    for _ in range(rnd.randint(1, 4)):
        a = rnd.randint(0, len(text))
        b = min(len(text), a + rnd.randint(0, 6))
        text = text[:a] + "".join(rnd.choice(PIECES) for _ in range(rnd.randint(0, 2))) + text[b:]
    if rnd.random() < 0.2:
        text = unicodedata.normalize(rnd.choice(["NFC", "NFD"]), text)
    return text


@pytest.mark.parametrize("seed", range(60))
def test_plan_replays_exactly_on_python_and_pycrdt_text(seed: int) -> None:
    rnd = random.Random(seed)
    old = "".join(rnd.choice(PIECES) for _ in range(rnd.randint(0, 25)))
    new = mutate(rnd, old)
    edits = plan_edits(old, new)
    assert replay(old, edits) == new, f"seed {seed}"
    doc, body = clause_doc(old)
    apply_edits(body, edits)
    assert str(body).encode() == new.encode(), f"seed {seed}"
    # A second replica that only sees the update agrees byte for byte.
    mirror: Doc[Text] = Doc()
    mirror_body = mirror.get("body", type=Text)
    mirror.apply_update(doc.get_update())
    assert str(mirror_body).encode() == new.encode(), f"seed {seed}"


def test_one_word_changed_in_a_long_clause_is_a_small_edit() -> None:
    old = "Signatories shall publish a summary of the training content. 😀 " * 40
    new = old.replace("publish", "make public", 1)
    edits = plan_edits(old, new)
    touched = sum(edit.delete_count + len(edit.insert_text) for edit in edits)
    assert 0 < touched <= len("publish") + len("make public")
    assert replay(old, edits) == new


def test_identical_texts_plan_nothing() -> None:
    assert plan_edits("😀 same", "😀 same") == []
    _, body = clause_doc("x")
    apply_edits(body, [])
    assert str(body) == "x"


def test_combining_mark_change_keeps_the_base_letter() -> None:
    old, new = "cafe\u0301 ok", "cafe\u0300 ok"
    assert plan_edits(old, new) == [Edit(4, 1, "\u0300")]


def test_concurrent_insertion_in_another_replica_survives_the_minimal_edit() -> None:
    original = "1. Signatories shall 😀 document the model.\r\n2. They shall keep it current."
    server, server_body = clause_doc(original)
    peer: Doc[Text] = Doc()
    peer_body = peer.get("body", type=Text)
    peer.apply_update(server.get_update())
    # The peer inserts next to the passage the server is about to rewrite, concurrently.
    at = original.index("the model")
    peer_body.insert(codepoint_to_utf8(original, at), "👩\u200d👩\u200d👧 ")
    amended = original.replace("shall 😀 document", "must document").replace("current", "up to date")
    apply_edits(server_body, plan_edits(original, amended))
    server_state, peer_state = server.get_state(), peer.get_state()
    server.apply_update(peer.get_update(server_state))
    peer.apply_update(server.get_update(peer_state))
    merged = str(server_body)
    assert merged == str(peer_body)
    assert merged == amended.replace("the model", "👩\u200d👩\u200d👧 the model")


def test_edit_far_from_the_changed_passage_is_preserved() -> None:
    original = "Preamble. " + "Measure text é. " * 50 + "Final clause."
    server, server_body = clause_doc(original)
    peer: Doc[Text] = Doc()
    peer_body = peer.get("body", type=Text)
    peer.apply_update(server.get_update())
    peer_body.insert(codepoint_to_utf8(original, len(original)), " (peer note 🇪🇺)")
    del peer_body[0 : codepoint_to_utf8(original, len("Preamble. "))]
    apply_edits(server_body, plan_edits(original, original.replace("Measure text é. ", "M. ", 1)))
    server.apply_update(peer.get_update(server.get_state()))
    assert str(server_body) == (
        "M. " + "Measure text é. " * 49 + "Final clause. (peer note 🇪🇺)"
    )


def test_apply_edits_joins_an_open_transaction_as_one_update() -> None:
    doc, body = clause_doc("abc 😀 def")
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    with doc.transaction():
        apply_edits(body, plan_edits("abc 😀 def", "abd 😀 xyz"))
        body.insert(0, ">")
    assert len(updates) == 1
    assert str(body) == ">abd 😀 xyz"


@pytest.mark.parametrize(
    "edits",
    [
        [Edit(5, 0, "x"), Edit(2, 0, "y")],  # out of order
        [Edit(0, 99, "")],  # past the end
        [Edit(-1, 0, "x")],
        [Edit(0, -1, "x")],
        [Edit(0, 0, "a\ud800")],  # lone surrogate
    ],
)
def test_invalid_plan_is_refused_before_anything_changes(edits: list[Edit]) -> None:
    doc, body = clause_doc("é😀 text")
    before = doc.get_update()
    with pytest.raises(ValueError):
        apply_edits(body, edits)
    assert str(body) == "é😀 text"
    assert doc.get_update() == before


def test_timeout_must_be_positive_and_bounds_the_diff() -> None:
    with pytest.raises(ValueError, match="timeout"):
        plan_edits("a", "b", timeout=0)
    rnd = random.Random(5)
    old = "".join(rnd.choice("abcdefgh😀é \n") for _ in range(60_000))
    new = "".join(rnd.choice("abcdefgh😀é \n") for _ in range(60_000))
    started = time.perf_counter()
    edits = plan_edits(old, new, timeout=0.05)
    # Bounded by the timeout, not by the machine: without it this diff runs for minutes.
    assert time.perf_counter() - started < 30.0
    assert replay(old, edits) == new


def test_lone_surrogate_in_new_text_is_refused() -> None:
    with pytest.raises(ValueError, match="lone surrogate"):
        plan_edits("abc", "ab\udc00c")
