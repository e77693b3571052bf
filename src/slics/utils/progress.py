"""Which cell a notebook stage is running, and for how long, on the terminal.

Papermill's progress bar (see :mod:`slics.utils.notebooks`) moves when a cell completes, so a
cell that runs for minutes looks frozen. The papermill engine registered here as
:data:`ENGINE` reports each cell's start to a :class:`CellClock`, whose thread prints, every
:data:`HEARTBEAT_S` seconds while one cell is still running, a line such as
``[09:25:10] 02_ista_clip: cell 16 of 44 running for 1m00s (stage 1m20s)``. Nothing of this
reaches the executed notebook.
"""

from __future__ import annotations

import sys
import threading
import time

from papermill.engines import NBClientEngine, papermill_engines
from tqdm import tqdm

ENGINE = "slics-progress"
HEARTBEAT_S = 30.0


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class CellClock:
    """The running cell of stage ``name``, and a thread that reports long cells every ``heartbeat`` s."""

    def __init__(self, name: str, heartbeat: float | None = None):
        self.name = name
        self.heartbeat = HEARTBEAT_S if heartbeat is None else float(heartbeat)
        if self.heartbeat <= 0:
            raise ValueError(f"heartbeat={heartbeat!r}: the reporting interval must be positive seconds.")
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._cell: tuple[int, int, float] | None = None  # (index, total, started)
        self._stage_started = time.monotonic()
        self._thread = threading.Thread(target=self._report, name=f"cell-clock-{name}", daemon=True)

    def cell_started(self, index: int, total: int) -> None:
        with self._lock:
            self._cell = (index, total, time.monotonic())

    def cell_finished(self) -> None:
        with self._lock:
            self._cell = None

    def _report(self) -> None:
        while not self._done.wait(self.heartbeat):
            with self._lock:
                cell = self._cell
            if cell is None:
                continue
            index, total, started = cell
            now = time.monotonic()
            if now - started >= self.heartbeat:
                tqdm.write(f"[{time.strftime('%H:%M:%S')}] {self.name}: cell {index + 1} of {total} running for "
                           f"{_duration(now - started)} (stage {_duration(now - self._stage_started)})",
                           file=sys.stderr)

    def __enter__(self) -> "CellClock":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()


class ProgressEngine(NBClientEngine):
    """papermill's nbclient engine, telling a :class:`CellClock` (``cell_clock=``) when cells start and end."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, cell_clock: CellClock | None = None, **kwargs):
        if cell_clock is not None:
            start, complete, total = nb_man.cell_start, nb_man.cell_complete, len(nb_man.nb.cells)

            def cell_start(cell, cell_index=None, **kw):
                cell_clock.cell_started(cell_index or 0, total)
                return start(cell, cell_index, **kw)

            def cell_complete(cell, cell_index=None, **kw):
                cell_clock.cell_finished()
                return complete(cell, cell_index=cell_index, **kw)

            nb_man.cell_start, nb_man.cell_complete = cell_start, cell_complete
        return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)


papermill_engines.register(ENGINE, ProgressEngine)
