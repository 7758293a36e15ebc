"""Progress over a class: done, running, failed, time left.

One line per finished submission (a log keeps them all), and on a terminal a bar below them
(tqdm). The time left is the mean time between finished submissions so far times what is left.
"""
from __future__ import annotations

import sys
import time


class ClassProgress:
    def __init__(self, total: int, stream=None):
        self.total, self.done, self.failed, self.running = total, 0, 0, 0
        self.stream = stream or sys.stdout
        self.started = time.monotonic()
        self.bar = None
        if total and getattr(sys.stderr, "isatty", lambda: False)():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="submission", dynamic_ncols=True, file=sys.stderr)

    def start(self, *_) -> None:
        self.running += 1
        self._refresh()

    def finish(self, row) -> None:
        self.running = max(0, self.running - 1)
        self.done += 1
        self.failed += row.status != "graded"
        where = f" on {row.worker}" if getattr(row, "worker", "") else ""
        line = (f"[grade] {row.student}/{row.assignment}: {row.status}, {row.score:g}/{row.max_score:g} "
                f"({row.seconds:.1f} s{where}){' - ' + row.reason if row.reason else ''}  [{self.summary()}]")
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
            self.bar.update(1)
            self._refresh()
        else:
            print(line, file=self.stream, flush=True)

    def summary(self) -> str:
        text = f"{self.done}/{self.total} done, {self.running} running, {self.failed} not graded"
        if self.done and self.done < self.total:
            left = (time.monotonic() - self.started) / self.done * (self.total - self.done)
            text += f", about {_duration(left)} left"
        return text

    def _refresh(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.running} running, {self.failed} not graded", refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
