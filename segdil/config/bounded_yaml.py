"""YAML read with a bound on alias expansion, so a \"billion laughs\" file is refused, not expanded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from segdil.errors import SegdilError

MAX_YAML_NODES = 100_000  # scalars, lists and mappings after alias expansion; real configs hold < 2,000


def safe_load_bounded(text: str, where: str | Path) -> Any:
    """``yaml.safe_load`` that first counts the document's nodes with every alias expanded and
    refuses more than ``MAX_YAML_NODES`` ("billion laughs": a few lines that expand to billions)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        count = _expanded_nodes(node, {})
        if count > MAX_YAML_NODES:
            raise SegdilError(f"{where}: YAML expands to more than {MAX_YAML_NODES:,} values through aliases (an alias bomb?); remove the nested '*' aliases")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _expanded_nodes(node: yaml.Node, memo: dict[int, int]) -> int:
    """How many nodes ``node`` stands for once aliases are copied out (memoised: O(distinct nodes))."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = MAX_YAML_NODES + 1  # a node that contains itself (recursive alias) is refused
    if isinstance(node, yaml.SequenceNode):
        total = 1 + sum(_expanded_nodes(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total = 1 + sum(_expanded_nodes(k, memo) + _expanded_nodes(v, memo) for k, v in node.value)
    else:
        total = 1
    memo[key] = min(total, 10 * MAX_YAML_NODES)
    return memo[key]
