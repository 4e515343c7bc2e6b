"""The numbered clause tree of a chapter: measures nest under their commitment. Pure."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol


class TreeClause(Protocol):
    id: int
    parent_id: int | None


@dataclass
class Node:
    clause: TreeClause
    children: list[Node] = field(default_factory=list)


def build_tree(clauses: Iterable[TreeClause]) -> list[Node]:
    """Nest clauses under their parents, keeping reading order; orphans stay at the top."""
    ordered: Sequence[TreeClause] = list(clauses)
    nodes = {clause.id: Node(clause) for clause in ordered}
    roots: list[Node] = []
    for clause in ordered:
        parent = nodes.get(clause.parent_id) if clause.parent_id is not None else None
        (parent.children if parent else roots).append(nodes[clause.id])
    return roots
