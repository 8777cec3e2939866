"""Bounds on parsed YAML, for frontmatter and config.yaml alike.

YAML aliases share objects, so a "billion laughs" document loads instantly but explodes (in
time and memory) as soon as something walks or copies it. Counting nodes as they are reached,
aliases included, stops at a budget before anything else touches the values.
"""

from __future__ import annotations

from typing import Any

__all__ = ["shape_problem"]


def shape_problem(data: Any, *, max_depth: int, max_nodes: int, expected: str) -> str | None:
    """What is wrong with `data`'s size or depth, as the end of a one-line message, or None."""
    budget = max_nodes
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        budget -= 1
        if budget < 0:
            return f"has more than {max_nodes:,} values, counting YAML aliases (expected {expected})"
        if depth > max_depth:
            return f"is nested more than {max_depth} levels deep (expected {expected})"
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return None
