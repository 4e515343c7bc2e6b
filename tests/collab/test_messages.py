"""The core's refusals carry their message and parameters, and every one of them is in the list
the adapter translates from (so in the catalogues): read from the source, so a new refusal that
is not listed fails here."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from codedraft.collab import messages
from codedraft.collab.core import ProtocolError, Reason, _parse_frame

COLLAB = Path(messages.__file__).resolve().parent


def _kinds(kind: type) -> set[str]:
    return {kind.__name__}.union(*(_kinds(sub) for sub in kind.__subclasses__()))


# Every kind of refusal: ProtocolError and all its subclasses (ReadOnly, SuggestionRefused ...).
REFUSALS = _kinds(ProtocolError)


def _refusals(path: Path) -> tuple[set[str], set[str]]:
    """(first arguments of ProtocolError/ReadOnly, second arguments of _Reader) in a module."""
    raised, parts = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
            first = node.args[0]
            if node.func.id in REFUSALS:
                assert isinstance(first, ast.Constant), \
                    f"{path.name}:{node.lineno}: a refusal must be a constant message"
                raised.add(first.value)
            if node.func.id == "_Reader" and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                parts.add(node.args[1].value)
    return raised, parts


def test_every_refusal_of_the_core_and_the_presence_checks_is_listed():
    raised, parts = set(), set()
    for name in ("core.py", "presence.py"):
        found, what = _refusals(COLLAB / name)
        raised |= found
        parts |= what
    assert raised and raised <= set(messages.CORE), sorted(raised - set(messages.CORE))
    assert parts and parts <= set(messages.PARTS), sorted(parts - set(messages.PARTS))


def test_a_refusal_reads_as_before_in_english_and_keeps_its_parameters():
    error = ProtocolError("unknown message type %(type)d", type=7)
    assert error.reason == "unknown message type 7" == str(error)
    assert isinstance(error.reason, Reason) and error.reason.msgid == "unknown message type %(type)d"
    assert error.reason.params == {"type": 7}
    with pytest.raises(ProtocolError) as truncated:
        _parse_frame(b"\x00", max_bytes=100)
    assert truncated.value.reason == "message is truncated" and truncated.value.reason.params == {"what": "message"}


def test_the_adapter_says_a_refusal_in_polish(app):
    with app.test_request_context("/", headers={"Accept-Language": "pl"}):
        assert messages.said_in(ProtocolError("unknown message type %(type)d", type=7).reason, None) == \
            "nieznany typ wiadomości: 7"
        assert messages.said_in(ProtocolError("%(what)s is truncated", what="message").reason, None) == \
            "wiadomość: dane są ucięte"
        assert messages.said_in("Join the clause first.", "en") == "Join the clause first."
        assert messages.said_in("Join the clause first.", None) == "Najpierw dołącz do przepisu."
        # Parameters that do not fit the message, and text that is no message, come back as they are.
        assert messages.said_in(Reason("plain %(x)s", {"x": "<b>"}), None) == "plain <b>"
        assert messages.said_in("<script>not a message</script>", None) == "<script>not a message</script>"
