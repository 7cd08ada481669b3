"""A per-epoch progress bar (tqdm, on stderr) showing the running loss and accuracy."""

from __future__ import annotations

import sys

from tqdm import tqdm


class ProgressBar:
    """``with ProgressBar(total, initial, description, enabled) as bar: bar.update(loss, accuracy)``.

    When ``enabled`` is false nothing is printed, so library callers and tests stay quiet.
    """

    def __init__(self, total: int, initial: int, description: str, enabled: bool = True):
        self._bar = (
            tqdm(total=total, initial=initial, desc=description, unit="step", file=sys.stderr,
                 dynamic_ncols=True, leave=False)
            if enabled else None
        )

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.close()

    def update(self, loss: float, accuracy: float) -> None:
        """Advance one step and show the epoch's running loss and accuracy."""
        if self._bar is not None:
            self._bar.set_postfix_str(f"loss {loss:.4f} acc {accuracy:.2%}", refresh=False)
            self._bar.update(1)

    @staticmethod
    def write(line: str, enabled: bool = True) -> None:
        """Print a line (e.g. an epoch summary) without breaking an active bar."""
        if enabled:
            tqdm.write(line, file=sys.stderr)
