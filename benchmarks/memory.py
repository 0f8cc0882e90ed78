"""Peak memory of a command: run it and sample its resident set size (children included).

    python -m benchmarks.memory --interval 0.5 --output runs/rss.json -- \\
        sentiment predict --input big.parquet --output scored.parquet

Prints one JSON line: the command's exit status, wall time, peak RSS and the RSS at each tenth
of the run (flat when memory does not grow with the work). ``--output`` also writes the whole
timeline. The sampler polls ``psutil`` (the process and all its descendants, summed), so a peak
shorter than the interval can be missed; ``ru_maxrss`` of the children is reported beside it as
the kernel's own high-water mark of the largest single process.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import threading
import time
from pathlib import Path

import psutil


class RssSampler:
    """Samples the summed RSS of a process tree every ``interval`` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.5):
        self.process, self.interval = psutil.Process(pid), interval
        self.timeline: list[tuple[float, float]] = []  # (seconds, MB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = time.perf_counter()

    def _rss(self) -> float:
        total = 0
        for process in [self.process, *self.process.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except psutil.Error:
                pass
        return total / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.timeline.append((time.perf_counter() - self._start, self._rss()))
            except psutil.Error:
                break
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return max((mb for _, mb in self.timeline), default=0.0)

    def deciles(self) -> list[float]:
        """The RSS at 10%, 20%, ... 100% of the run (MB)."""
        if not self.timeline:
            return []
        end = self.timeline[-1][0]
        points = []
        for tenth in range(1, 11):
            at = end * tenth / 10
            points.append(next(mb for t, mb in self.timeline if t >= at - 1e-9))
        return [round(mb) for mb in points]


def measure(command: list[str], interval: float = 0.5) -> dict:
    """Run ``command`` to the end while sampling its memory."""
    start = time.perf_counter()
    child = subprocess.Popen(command)
    with RssSampler(child.pid, interval) as sampler:
        status = child.wait()
    return {"command": command, "exit_status": status,
            "seconds": round(time.perf_counter() - start, 1),
            "peak_rss_mb": round(sampler.peak_mb), "rss_deciles_mb": sampler.deciles(),
            "children_ru_maxrss_mb": round(
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
            "timeline": sampler.timeline}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between samples")
    parser.add_argument("--output", default=None, help="write the timeline here (JSON)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (after --)")
    result = measure(command, args.interval)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(result))
    print(json.dumps({k: v for k, v in result.items() if k != "timeline"}))


if __name__ == "__main__":
    main()
