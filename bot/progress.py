"""A progress bar on stderr for long CLI runs: drawn only on a terminal, and only once the run
has taken a second (a short run prints nothing)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

WIDTH = 30


class ProgressBar:
    def __init__(
        self, total: int, unit: str = "bars", stream: TextIO | None = None, delay: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = max(total, 1)
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.delay = delay
        self.clock = clock
        self.started = clock()
        self.enabled = self.stream.isatty()
        self.drawn = False

    def __call__(self, done: int) -> None:
        if not self.enabled:
            return
        elapsed = self.clock() - self.started
        if elapsed < self.delay:
            return
        share = min(done / self.total, 1.0)
        filled = int(share * WIDTH)
        rate = done / elapsed if elapsed > 0 else 0.0
        self.stream.write(f"\r[{'#' * filled}{'.' * (WIDTH - filled)}] {share:4.0%} "
                          f"{done:,}/{self.total:,} {self.unit} ({rate:,.0f}/s)")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        """Clear the bar's line, so what follows starts on a clean line."""
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
