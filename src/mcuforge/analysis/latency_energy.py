"""Latency and energy of one inference on a board: the one home of the estimate.

    cycles    = instructions x CPI          (CPI = 1 assumed), or a cycle count measured on the board
    latency_s = cycles / clock_hz
    energy_J  = V x I_run x latency_s       (the board's datasheet supply voltage and Run-mode current)

It is an estimate. Instructions are not cycles: the counted instructions are those of the Cortex-M7
build in unicorn, and on a real board Flash wait states, cache misses, multi-cycle loads and
multiplies add cycles while the M7's dual issue removes some, so CPI = 1 is an assumption, not a
measurement. The Run-mode current is the datasheet's typical figure for a benchmark loop (CoreMark
or similar) from Flash, not measured with this model. A cycle count measured on the board (``--cycles
N``, e.g. from the DWT cycle counter around ``mcuforge_invoke``) replaces the instruction estimate and
the result says "measured"; the energy stays an estimate (the current is the datasheet's). A board
without datasheet current figures (`mcuforge.targets.Board.has_energy_figures`) gets a latency and no
energy figure.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import McuforgeError
from ..targets import BOARDS, Board

CPI_ASSUMED = 1.0

FORMULA = ("cycles = instructions x CPI (CPI = 1 assumed) unless a cycle count measured on the board "
           "is given; latency_s = cycles / clock_hz; energy_J = V x I_run x latency_s (datasheet "
           "supply voltage and typical Run-mode current)")

NOTES = (
    "an estimate: instructions are not cycles (Flash wait states, cache misses and multi-cycle "
    "instructions add cycles, the Cortex-M7's dual issue removes some); CPI = 1 is assumed",
    "instructions are counted on the Cortex-M7 build in unicorn whatever the board",
    "I_run is the datasheet's typical Run-mode current (benchmark code from Flash), not measured "
    "with this model; a board without a datasheet figure gets no energy estimate",
    "a cycle count measured on the board (--cycles N) replaces the instruction estimate",
)

ESTIMATED = "estimated"
MEASURED = "measured"


@dataclass(frozen=True)
class InferenceEstimate:
    """Latency (and energy, when the board has datasheet figures) of one inference on ``board``.
    ``cycles_source`` is `ESTIMATED` (instructions x CPI) or `MEASURED` (a count from the board)."""

    board: Board
    cycles: int
    cycles_source: str
    instructions: int | None
    cpi: float

    @property
    def latency_s(self) -> float:
        """Seconds per inference: cycles / clock."""
        return self.cycles / self.board.clock_hz

    @property
    def energy_j(self) -> float | None:
        """Joules per inference, V x I_run x latency; None without datasheet figures."""
        if not self.board.has_energy_figures:
            return None
        return self.board.supply_v * self.board.run_current_a * self.latency_s

    @property
    def power_w(self) -> float | None:
        """Run-mode power V x I_run; None without datasheet figures."""
        if not self.board.has_energy_figures:
            return None
        return self.board.supply_v * self.board.run_current_a

    def to_json(self) -> dict:
        """The JSON-ready figures (report.json, ``bench --json``)."""
        return {
            "board": self.board.name,
            "clock_hz": self.board.clock_hz,
            "cycles": self.cycles,
            "cycles_source": self.cycles_source,
            "instructions": self.instructions,
            "cpi_assumed": self.cpi if self.cycles_source == ESTIMATED else None,
            "latency_s": self.latency_s,
            "latency_ms": round(1000 * self.latency_s, 6),
            "supply_v": self.board.supply_v,
            "run_current_a": self.board.run_current_a,
            "energy_j": self.energy_j,
            "energy_uj": None if self.energy_j is None else round(1e6 * self.energy_j, 6),
            "current_source": self.board.current_source or None,
        }

    def describe(self) -> str:
        """One line: board, latency (estimated or measured) and energy or why there is none."""
        if self.cycles_source == MEASURED:
            how = f"measured {self.cycles:,} cycles"
        else:
            how = f"estimated from {self.instructions:,} instructions x CPI {self.cpi:g}"
        line = (f"{self.board.name} @ {self.board.clock_hz / 1e6:g} MHz: latency "
                f"{format_ms(self.latency_s)} ({how})")
        if self.energy_j is None:
            return line + "; energy: no datasheet run current on record"
        return (line + f"; energy {format_uj(self.energy_j)} (estimate: {self.board.supply_v:g} V x "
                f"{1000 * self.board.run_current_a:g} mA x latency)")


def format_ms(seconds: float) -> str:
    """Seconds as milliseconds, four significant digits (``19.61 ms``, ``0.02033 ms``)."""
    return f"{1000 * seconds:,.4g} ms"


def format_uj(joules: float) -> str:
    """Joules as microjoules, four significant digits."""
    return f"{1e6 * joules:,.4g} uJ"


def parse_cycles(text: str) -> int:
    """A cycle count given on the command line (``3830000``, ``3_830_000`` or ``3,830,000``); a
    one-line error for anything that is not a positive whole number."""
    cleaned = text.strip().replace("_", "").replace(",", "")
    if not cleaned.isdigit() or int(cleaned) <= 0:
        raise McuforgeError(f"--cycles {text!r}: give the positive whole number of cycles one "
                            "inference took on the board (e.g. --cycles 3830000)")
    return int(cleaned)


def estimate_inference(board: Board, instructions: int | None = None, cycles: int | None = None,
                       cpi: float = CPI_ASSUMED) -> InferenceEstimate:
    """The latency and energy of one inference on ``board``: from ``cycles`` measured on the board
    when given (they replace the estimate), else from ``instructions`` x ``cpi``."""
    if cycles is not None:
        if cycles <= 0:
            raise McuforgeError(f"cycles must be positive, got {cycles}")
        return InferenceEstimate(board, int(cycles), MEASURED, instructions, cpi)
    if instructions is None or instructions <= 0:
        raise McuforgeError("a latency estimate needs the counted instructions or a measured cycle count")
    return InferenceEstimate(board, int(round(instructions * cpi)), ESTIMATED, int(instructions), cpi)


def board_estimates(instructions: int | None, board: Board | None = None,
                    cycles: int | None = None) -> list[InferenceEstimate]:
    """Estimates for ``board`` alone (the measured ``cycles`` apply to it), or for every known board
    when none is named (``cycles`` then must be None: a count belongs to one board)."""
    if board is not None:
        return [estimate_inference(board, instructions, cycles)]
    if cycles is not None:
        raise McuforgeError("--cycles is a count measured on one board: give --board too")
    return [estimate_inference(each, instructions) for each in BOARDS.values()]


def estimates_json(estimates: list[InferenceEstimate]) -> dict:
    """The report entry: the formula, the notes and one entry per board."""
    return {"formula": FORMULA, "notes": list(NOTES), "boards": [e.to_json() for e in estimates]}
