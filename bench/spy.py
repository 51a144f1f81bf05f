"""Sampling profiles of running bench processes with py-spy, summarised as text."""

import subprocess
from collections import Counter
from pathlib import Path

from .procs import BIN

# Plumbing that is on the stack of nearly every sample and says nothing.
_PLUMBING = (
    "threading.py",
    "contextlib.py",
    "click/",
    "celery/bin/",
    "bootsteps.py",
    "runpy",
    "importlib",
    "gunicorn/",
    "concurrent/futures",
    "functools.py",
    "django/utils/deprecation.py",
    "django/core/handlers/",
    "asyncio.py",
)


class Spy:
    """``py-spy record`` of a process and its children while a phase runs."""

    def __init__(self, pid: int, out: Path, seconds: float, rate: int = 250) -> None:
        self.out = out
        self.popen = subprocess.Popen(
            [
                str(BIN / "py-spy"),
                "record",
                "--subprocesses",
                "--nonblocking",
                "-d",
                str(max(1, int(seconds))),
                "-r",
                str(rate),
                "-f",
                "raw",
                "-o",
                str(out),
                "-p",
                str(pid),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def summary(self, anchor: tuple[str, ...] = (), top: int = 18) -> str:
        try:
            self.popen.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.popen.kill()
        if not self.out.exists():
            return "(py-spy produced no profile)"
        return summarise(self.out.read_text(), anchor, top)


def _short(frame: str) -> str:
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/work/main/", "python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})"


def summarise(raw: str, anchor: tuple[str, ...], top: int) -> str:
    """Where the CPU samples go: per anchor frame, then inside the anchors."""
    total = 0
    in_anchor: Counter[str] = Counter()
    inside: Counter[str] = Counter()
    outside: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        if not stack.strip():
            continue
        frames = [
            _short(f)
            for f in stack.split(";")
            if not f.startswith(("process ", "thread "))
        ]
        hit = next(
            (i for i, f in enumerate(frames) if any(f.startswith(a) for a in anchor)),
            None,
        )
        if hit is None:
            leaf = next(
                (f for f in reversed(frames) if not any(p in f for p in _PLUMBING)),
                frames[-1] if frames else "?",
            )
            outside[leaf] += n
            continue
        in_anchor[frames[hit]] += n
        for frame in set(frames[hit + 1 :]):
            if not any(p in frame for p in _PLUMBING):
                inside[frame] += n
    if not total:
        return "(no samples)"
    lines = [f"{total} CPU samples (py-spy, all threads and child processes)."]
    for frame, n in in_anchor.most_common():
        lines.append(f"{n / total:6.1%}  in {frame}")
    lines.append(f"{sum(outside.values()) / total:6.1%}  elsewhere; top leaves there:")
    lines += [f"         {n / total:6.1%}  {f}" for f, n in outside.most_common(5)]
    if inside:
        lines.append("Inside those, share of all samples per frame (inclusive):")
        lines += [f"{n / total:6.1%}  {f}" for f, n in inside.most_common(top)]
    return "\n".join(lines)


def share(raw_path: Path, needle: str | tuple[str, ...], leaf: bool = False) -> float:
    """Fraction of the samples in ``raw_path`` with ``needle`` on the stack
    (or, with ``leaf``, in the innermost frame: where the CPU actually is)."""
    needles = (needle,) if isinstance(needle, str) else needle
    if not raw_path.exists():
        return float("nan")
    total = hit = 0
    for line in raw_path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack.strip():
            continue
        total += int(count)
        where = stack.rsplit(";", 1)[-1] if leaf else stack
        if any(n in where for n in needles):
            hit += int(count)
    return hit / total if total else float("nan")
