"""YAML that cannot explode: a safe loader with limits on aliases, expanded size and depth.

A "billion laughs" document is a few hundred bytes whose aliases (`*a`) expand to millions of
values: PyYAML builds it as a small graph of shared lists, and the first thing that walks it
(a tag list, a permalink field, pydantic) never finishes. So a document is composed into its
node graph first, which is linear in its size, and measured before anything is constructed:

- at most `MAX_ALIASES` alias uses (anchors are fine; each `*name` counts once);
- at most `MAX_NODES` values with every alias expanded (a real front matter has a few dozen,
  a real config.yaml a few hundred);
- at most `MAX_DEPTH` levels of nesting (construction and everything after it recurse);
- no alias to a collection that contains it (a recursive document never ends either).

Anything over a limit raises `YamlLimitError`, a `yaml.MarkedYAMLError` whose problem says
which limit and whose mark is where the document crossed it, so callers that already name the
line of a YAML error name it for this one too. Only plain data is built (the safe loader).
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_ALIASES = 100
MAX_NODES = 10_000
MAX_DEPTH = 64

_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlLimitError(yaml.MarkedYAMLError):
    """The document is over one of this module's limits (an alias bomb, or absurd nesting)."""


def safe_load(text: str) -> Any:
    """`yaml.safe_load(text)` within the limits above; raises yaml.YAMLError (or its subclass
    YamlLimitError) for anything it refuses."""
    return load_with_node(text)[0]


def load_with_node(text: str) -> tuple[Any, yaml.Node | None]:
    """The document's data and its checked node graph (for callers that map keys to lines)."""
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        if not within_limits(text):
            check_node(node)
        try:
            return loader.construct_document(node), node
        except (ValueError, OverflowError) as exc:  # 2026-02-30: datetime() refuses it
            if isinstance(exc, yaml.YAMLError):
                raise
            mark = _refused_scalar(node)
            raise yaml.constructor.ConstructorError(problem=str(exc), problem_mark=mark) from None
    finally:
        loader.dispose()


# Characters that can open a level of nesting: a flow collection, a block sequence entry, a
# mapping key (explicit or implicit). Each level of a document needs at least one of them.
_NESTING = "[{-:?"


def within_limits(text: str) -> bool:
    """Whether `text` cannot be over any limit, by counting characters (so that the walk of
    `check_node` is spared for the front matter of nearly every post): without `*` there is no
    alias; a node takes at least half a character of the text (`?` alone makes an empty key
    and an empty value), so a text under MAX_NODES / 2 characters holds fewer than MAX_NODES
    values; and nesting never goes deeper than one level per character that can open one, plus
    the innermost value. tests/config/test_hostile_yaml.py checks the bound against the walk."""
    return (
        "*" not in text
        and 2 * len(text) + 1 < MAX_NODES
        and sum(text.count(c) for c in _NESTING) + 1 < MAX_DEPTH
    )


def check_node(root: yaml.Node) -> None:
    """Refuse a composed document over the limits, without expanding a single alias.

    An iterative walk of the node graph: a node met again is an alias use; the expanded size
    of each node is computed once and reused, so the check costs the document's size.
    """
    sizes: dict[int, int] = {}
    uses: dict[int, int] = {}
    aliases = 0
    open_nodes: set[int] = set()  # the nodes on the path from the root to the current one
    # (node, depth, children pushed yet): post-order, so a node's size sums its children's
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            size = 1 + sum(sizes[id(child)] for child in _children(node))
            if size > MAX_NODES:
                _refuse(f"its aliases expand to more than {MAX_NODES:,} values", node)
            sizes[key] = size
            continue
        if key in sizes:
            continue  # met through another alias and measured already
        if depth > MAX_DEPTH:
            _refuse(f"it nests more than {MAX_DEPTH} levels deep", node)
        open_nodes.add(key)
        stack.append((node, depth, True))
        for child in _children(node):
            child_key = id(child)
            if child_key in open_nodes:
                _refuse("an alias refers to a collection that holds it", child)
            uses[child_key] = uses.get(child_key, 0) + 1
            if uses[child_key] > 1:
                aliases += 1
                if aliases > MAX_ALIASES:
                    _refuse(f"it uses more than {MAX_ALIASES} aliases", child)
            if child_key not in sizes:
                stack.append((child, depth + 1, False))


def _refused_scalar(root: yaml.Node) -> yaml.Mark | None:
    """Where the first scalar the loader cannot construct is (a date such as 2026-02-30), so
    that the error names its line; None when no single scalar is to blame."""
    loader = _LOADER("")  # a fresh one: the failed construction left its state half done
    try:
        seen: set[int] = set()
        stack = [root]
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, yaml.ScalarNode):
                try:
                    loader.construct_object(node, deep=True)
                except (ValueError, OverflowError):
                    return node.start_mark
                continue
            stack.extend(reversed(_children(node)))
        return None
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _refuse(problem: str, node: yaml.Node) -> None:
    raise YamlLimitError(problem=problem, problem_mark=node.start_mark)
