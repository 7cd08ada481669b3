"""Block names as users type them: ``b4`` and ``block4`` name the same block whichever frontend
made the graph (zoo/spec graphs call it ``b4``, .tflite graphs ``block4``)."""

from __future__ import annotations

import pytest

from mcuforge.ir import Block, Graph


def _graph_with_blocks(*names: str) -> Graph:
    return Graph("g", {}, (), (), (), blocks=tuple(Block(name, ()) for name in names))


@pytest.mark.parametrize("names", [("b0", "b4", "b12"), ("block0", "block4", "block12")])
@pytest.mark.parametrize("typed, number", [("b4", 4), ("block4", 4), ("Block12", 12), ("B0", 0),
                                           ("block04", 4)])
def test_either_spelling_finds_the_block(names, typed, number) -> None:
    graph = _graph_with_blocks(*names)
    assert graph.block_name(typed) == names[[0, 4, 12].index(number)]


def test_unknown_or_other_names_come_back_unchanged() -> None:
    graph = _graph_with_blocks("stem", "b1", "head")
    assert graph.block_name("stem") == "stem"
    assert graph.block_name("block7") == "block7"  # no such block: the caller's error names it
    assert graph.block_name("3") == "3"  # an index is the parser's business
    assert graph.block_name("bogus4") == "bogus4"
