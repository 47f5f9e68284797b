"""How deeply a parsed JSON value nests, measured without recursion.

orjson reads up to 1024 levels but writes only 254, and jsonschema recurses several frames per
level, so the server bounds nesting once, where bodies are parsed, and again wherever a value
from outside is handed to a recursive tool.
"""

from __future__ import annotations

from typing import Any

# serde_json's default recursion limit, which DeepSeek's own server enforces on request bodies.
MAX_BODY_DEPTH = 128


def deeper_than(value: Any, limit: int) -> bool:
    """True when `value` has containers nested more than `limit` levels deep."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if level > limit:
            return True
        stack.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return False


def may_be_deeper_than(data: bytes, limit: int) -> bool:
    """A cheap screen on raw JSON: fewer opening brackets than `limit` cannot nest deeper."""
    return data.count(b"[") + data.count(b"{") > limit
