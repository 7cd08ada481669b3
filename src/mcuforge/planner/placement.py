"""Offset assignment for items with lifetimes in one arena: greedy best fit and a small exact search.

An *item* is what the placer moves as a unit: one tensor, one kernel buffer, or a rigid group of
tensors chained by legal overlaps (an in-place depthwise output sits at its input's offset, a
pointwise-expansion input at a fixed offset inside its output, ...). Every member of an item has an
offset relative to the item's base, a size and a lifetime ``[first, last]`` in op indices. Two members
of different items conflict when their lifetimes intersect; they must then occupy disjoint bytes.

For one item and the items already placed, the bases where the item fits form the complement of a union
of open intervals: member ``m`` and placed block ``q`` with intersecting lifetimes forbid every base in
``(q.start - m.rel - m.size, q.end - m.rel)``. The placer walks the feasible ranges of that complement:

- *first fit* takes the lowest aligned feasible base (TFLite Micro's greedy planner, and the
  bottom-left rule the exact search is built on);
- *best fit* takes the base that raises the arena top least and, among those, the tightest free range
  (least slack around the item), so small holes are filled by items that fit them.

`greedy_place` runs several orders (largest first, longest lifetime first, first use first, widest
first) with both rules and keeps the smallest arena. While that arena is above the lower bound it then
repairs the order by local search: an item that reaches the top is moved to a random earlier place in
the order, and the move is kept unless the top grows (fixed seed, so plans are reproducible).
Dynamic storage allocation is NP-complete, so all of this is heuristic; the lower bound (the largest
number of bytes live at one op) is not always reachable.
`exact_place` searches every order of placing items, each at its lowest feasible base, by depth-first
branch and bound (prune when the top reaches the best found, stop at the lower bound: the largest
number of bytes that must be live at one op). For single-tensor items this is exact: given an optimal
layout, placing items in order of their offsets, each as low as it fits, never puts one higher
(induction on that order), so some order reproduces an optimum. Rigid groups that interleave with other
items can escape that argument; the search then only guarantees a layout no worse than greedy.
A node budget (5,000 placements, about 0.1 s) bounds the search; the caller is told whether it
finished.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence


@dataclass(frozen=True)
class Member:
    """One block of bytes inside an item: ``rel`` from the item's base, live over ``[first, last]``."""

    name: str
    rel: int
    size: int
    first: int
    last: int


@dataclass(frozen=True)
class Item:
    """A rigid set of members placed together (``members[*].rel`` >= 0, the lowest is 0)."""

    members: tuple[Member, ...]

    @property
    def extent(self) -> int:
        """Bytes from the base to the end of the highest member."""
        return max(m.rel + m.size for m in self.members)

    @property
    def largest(self) -> int:
        """Size of the largest member."""
        return max(m.size for m in self.members)

    @property
    def first(self) -> int:
        """First op at which any member is live."""
        return min(m.first for m in self.members)

    @property
    def last(self) -> int:
        """Last op at which any member is live."""
        return max(m.last for m in self.members)


@dataclass(frozen=True)
class Block:
    """A placed member: bytes ``[start, end)`` live over ``[first, last]``."""

    name: str
    start: int
    end: int
    first: int
    last: int


def align_up(value: int, alignment: int) -> int:
    """The smallest multiple of ``alignment`` that is >= ``value``."""
    return -(-value // alignment) * alignment


def _feasible_ranges(item: Item, placed: Sequence[Block]) -> list[tuple[int, float]]:
    """Closed ranges ``[lo, hi]`` of bases at which ``item`` conflicts with nothing in ``placed``."""
    forbidden: list[tuple[int, int]] = []
    for member in item.members:
        for block in placed:
            if member.size == 0 or block.end == block.start:
                continue
            if block.first <= member.last and member.first <= block.last:
                forbidden.append((block.start - member.rel - member.size, block.end - member.rel))
    forbidden.sort()
    ranges: list[tuple[int, float]] = []
    cursor = 0
    for lo, hi in forbidden:
        if hi <= cursor:
            continue
        if lo >= cursor:
            ranges.append((cursor, lo))
        cursor = max(cursor, hi)
    ranges.append((cursor, float("inf")))
    return ranges


def place_one(item: Item, placed: Sequence[Block], alignment: int, top: int,
              best_fit: bool) -> int:
    """The base at which to put ``item`` (see module docstring for the two rules)."""
    best: tuple[float, float, int] | None = None
    for lo, hi in _feasible_ranges(item, placed):
        base = align_up(lo, alignment)
        if base > hi:
            continue
        if not best_fit:
            return base
        score = (max(top, base + item.extent), hi - lo, base)
        if best is None or score < best:
            best = score
    assert best is not None  # the last range is unbounded
    return best[2]


def blocks_of(item: Item, base: int) -> list[Block]:
    """The placed members of ``item`` at ``base``."""
    return [Block(m.name, base + m.rel, base + m.rel + m.size, m.first, m.last) for m in item.members]


def place_in_order(items: Sequence[Item], alignment: int, best_fit: bool,
                   placed: Iterable[Block] = ()) -> tuple[list[int], int]:
    """Place ``items`` one after another; returns their bases and the arena top."""
    blocks = list(placed)
    top = max((b.end for b in blocks), default=0)
    bases = []
    for item in items:
        base = place_one(item, blocks, alignment, top, best_fit)
        bases.append(base)
        blocks.extend(blocks_of(item, base))
        top = max(top, base + item.extent)
    return bases, top


_ORDERS: dict[str, Callable[[Item], tuple]] = {
    "largest-first": lambda it: (-it.largest, -it.extent, -(it.last - it.first), it.first),
    "longest-lifetime-first": lambda it: (-(it.last - it.first), -it.largest, it.first),
    "first-use-first": lambda it: (it.first, -it.largest),
    "widest-first": lambda it: (-it.extent * (it.last - it.first + 1), it.first),
}


def greedy_place(items: Sequence[Item], alignment: int,
                 repair_steps: int | None = None) -> tuple[list[int], int, str]:
    """Best of several orders x {best fit, first fit}, then order repair while the arena is above the
    lower bound; returns bases (in ``items`` order), the arena top and how the layout was found.
    ``repair_steps`` defaults to 200, fewer for big graphs (each step re-places every item)."""
    if not items:
        return [], 0, "empty"
    if repair_steps is None:
        repair_steps = min(200, max(20, 4_000_000 // len(items) ** 2))
    bound = live_lower_bound(items)
    best: tuple[int, list[int], bool, str] | None = None
    for order_name, key in _ORDERS.items():
        order = sorted(range(len(items)), key=lambda i: key(items[i]))
        for best_fit in (True, False):
            _, top = place_in_order([items[i] for i in order], alignment, best_fit)
            if best is None or top < best[0]:
                rule = "best" if best_fit else "first"
                best = (top, order, best_fit, f"greedy {order_name}, {rule} fit")
            if top <= bound:
                break
        if best[0] <= bound:
            break
    top, order, best_fit, label = best
    if top > bound and repair_steps > 0:
        order, repaired_top = _repair_order(items, order, best_fit, alignment, bound, repair_steps)
        if repaired_top < top:
            top, label = repaired_top, label + ", order repaired"
    bases_sorted, top = place_in_order([items[i] for i in order], alignment, best_fit)
    bases = [0] * len(items)
    for position, index in enumerate(order):
        bases[index] = bases_sorted[position]
    return bases, top, label


def _repair_order(items: Sequence[Item], order: list[int], best_fit: bool, alignment: int,
                  bound: int, steps: int) -> tuple[list[int], int]:
    """Local search over the placement order: move an item that reaches the arena top to a random
    earlier position (it then gets first pick of the low offsets); keep the move unless the top grows.
    Deterministic (fixed seed); stops at the lower bound."""
    rng = random.Random(0)
    bases, top = place_in_order([items[i] for i in order], alignment, best_fit)
    for _ in range(steps):
        if top <= bound:
            break
        culprits = [pos for pos, index in enumerate(order)
                    if pos > 0 and bases[pos] + items[index].extent == top]
        pos = rng.choice(culprits) if culprits else rng.randrange(1, len(order)) if len(order) > 1 \
            else 0
        if pos == 0:
            break
        candidate = list(order)
        moved = candidate.pop(pos)
        candidate.insert(rng.randrange(0, pos), moved)
        new_bases, new_top = place_in_order([items[i] for i in candidate], alignment, best_fit)
        if new_top <= top:
            order, bases, top = candidate, new_bases, new_top
    return order, top


def live_lower_bound(items: Sequence[Item]) -> int:
    """Bytes that must be live at once at some op: at each op, the union of each item's live members
    (items never share bytes while both are live), maximised over ops."""
    if not items:
        return 0
    times = sorted({t for it in items for m in it.members for t in (m.first, m.last)})
    bound = 0
    for t in times:
        total = 0
        for item in items:
            spans = sorted((m.rel, m.rel + m.size) for m in item.members if m.first <= t <= m.last)
            end = None
            for lo, hi in spans:
                if end is None or lo >= end:
                    total += hi - lo
                    end = hi
                elif hi > end:
                    total += hi - end
                    end = hi
        bound = max(bound, total)
    return bound


def exact_place(items: Sequence[Item], alignment: int, upper_bound: int,
                node_budget: int = 5_000) -> tuple[list[int] | None, int, bool]:
    """Branch and bound over placement orders (each item at its lowest feasible base).

    Returns ``(bases or None, top, finished)``: bases of a layout with top < ``upper_bound`` if one was
    found (else None), and whether the search proved optimality (ran to completion or hit the bound)."""
    bound = live_lower_bound(items)
    best_top = upper_bound
    best_bases: list[int] | None = None
    nodes = 0
    exhausted = False
    order = sorted(range(len(items)), key=lambda i: (-items[i].largest, items[i].first))

    def search(blocks: list[Block], top: int, bases: dict[int, int]) -> bool:
        """Returns True to stop the whole search (lower bound reached or budget spent)."""
        nonlocal best_top, best_bases, nodes, exhausted
        if len(bases) == len(items):
            if top < best_top:
                best_top = top
                best_bases = [bases[i] for i in range(len(items))]
            return best_top <= bound
        for index in order:
            if index in bases:
                continue
            nodes += 1
            if nodes > node_budget:
                exhausted = True
                return True
            item = items[index]
            base = place_one(item, blocks, alignment, top, best_fit=False)
            new_top = max(top, base + item.extent)
            if new_top >= best_top:
                continue
            bases[index] = base
            stop = search(blocks + blocks_of(item, base), new_top, bases)
            del bases[index]
            if stop:
                return True
        return False

    search([], 0, {})
    finished = not exhausted or best_top <= bound
    return best_bases, best_top, finished
