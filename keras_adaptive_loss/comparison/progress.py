"""Progress of a comparison that names the run in flight, in plain text.

On a terminal one status line is rewritten in place (``\\r``); anywhere else (a file, a pipe,
a CI log) every finished run prints one line. No colour codes either way, so a redirected log
stays readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["RunProgress"]


class RunProgress:
    """Reports ``[k/N] <loss>, seed <s>`` as runs start and finish.

    Args:
        total: number of runs.
        stream: where to write (default ``sys.stdout``).
        interactive: rewrite one line in place; default: whether ``stream`` is a TTY.

    >>> import io
    >>> out = io.StringIO()
    >>> progress = RunProgress(2, stream=out, interactive=False)
    >>> progress.start("focal", 0)
    >>> progress.finish("focal", 0, {"accuracy": 0.9731}, seconds=3.2)
    >>> print(out.getvalue().strip())
    [1/2] focal, seed 0: test accuracy 97.31 % (3.2 s)
    """

    def __init__(
        self, total: int, stream: TextIO | None = None, interactive: bool | None = None
    ) -> None:
        self.total = int(total)
        self.stream = sys.stdout if stream is None else stream
        if interactive is None:
            isatty = getattr(self.stream, "isatty", None)
            interactive = bool(isatty and isatty())
        self.interactive = interactive
        self.done = 0
        self._width = 0
        self._started = time.perf_counter()

    def _write(self, text: str, final: bool) -> None:
        if self.interactive:
            padding = " " * max(0, self._width - len(text))
            self.stream.write("\r" + text + padding + ("\n" if final else ""))
            self._width = 0 if final else len(text)
        elif final:
            self.stream.write(text + "\n")
        self.stream.flush()

    def start(self, loss: str, seed: int) -> None:
        """A run begins (shown on a terminal only)."""
        self._started = time.perf_counter()
        self._write(f"[{self.done + 1}/{self.total}] {loss}, seed {seed}: training ...", False)

    def finish(
        self,
        loss: str,
        seed: int,
        metrics: dict[str, float],
        seconds: float | None = None,
        resumed: bool = False,
    ) -> None:
        """A run ended (or was loaded from a resumed comparison): one line with its scores."""
        self.done += 1
        if seconds is None:
            seconds = time.perf_counter() - self._started
        scores = ", ".join(
            f"test {_TITLES.get(name, name)} {100 * value:.2f} %" for name, value in metrics.items()
        )
        when = "resumed" if resumed else f"{seconds:.1f} s"
        self._write(f"[{self.done}/{self.total}] {loss}, seed {seed}: {scores} ({when})", True)


_TITLES = {"average_precision": "AP", "f1": "F1"}
