"""py-spy sampling of the worker and sink during a run, aggregated to self time per function.

``py-spy record --format raw`` writes collapsed stacks: ``frame;frame;...;frame count`` with
frames like ``handle (streams/worker/app.py:142)``; the last frame of a stack is where the
sample's time was spent (self time).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def start(pid: int, out: Path, duration: int = 10, rate: int = 200) -> subprocess.Popen[bytes]:
    exe = py_spy()
    if exe is None:
        raise RuntimeError("py-spy is not installed (.venv/bin/pip install py-spy)")
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--duration", str(duration),
                             "--rate", str(rate), "--format", "raw", "--nonblocking",
                             "-o", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def short_frame(frame: str) -> str:
    """``func (path/to/file.py:12)`` -> ``path/to/file.py:func`` (site-packages trimmed)."""
    match = FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "lib/python3.":
                path = "stdlib:" + path.split("/", 1)[-1]
            break
    return f"{path}:{match['func']}"


def self_time(lines: list[str]) -> tuple[Counter[str], int]:
    """Samples per function where the sample ended (self time) and the total samples."""
    counts: Counter[str] = Counter()
    total = 0
    for line in lines:
        line = line.rstrip()
        if not line or " " not in line:
            continue
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        n = int(number)
        total += n
        counts[short_frame(stack.split(";")[-1])] += n
    return counts, total


def inclusive_time(lines: list[str], prefixes: tuple[str, ...]) -> Counter[str]:
    """Samples per function of ours (path starts with one of ``prefixes``) anywhere on the
    stack, counted once per sample."""
    counts: Counter[str] = Counter()
    for line in lines:
        stack, _, number = line.rstrip().rpartition(" ")
        if not number.isdigit():
            continue
        seen = {f for f in (short_frame(x) for x in stack.split(";")) if f.startswith(prefixes)}
        for frame in seen:
            counts[frame] += int(number)
    return counts


def summarize(path: Path, top: int = 15) -> dict[str, object]:
    """The top self-time functions (share of samples) and the top of ours inclusive."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return {"error": f"no profile: {exc}"}
    counts, total = self_time(lines)
    ours = inclusive_time(lines, ("streams/", "sinks/", "schemas/"))
    share = (lambda n: round(n / total, 4)) if total else (lambda n: 0.0)
    return {"samples": total, "file": str(path),
            "top_self": [[f, share(n)] for f, n in counts.most_common(top)],
            "top_ours_inclusive": [[f, share(n)] for f, n in ours.most_common(top)]}


def lines_for(name: str, summary: dict[str, object]) -> str:
    out = [f"profile {name}: {summary.get('samples', 0)} samples ({summary.get('file', '')})"]
    if "error" in summary:
        return out[0] + f": {summary['error']}"
    for label in ("top_self", "top_ours_inclusive"):
        out.append(f"  {label.replace('_', ' ')}:")
        rows = summary.get(label)
        for frame, share in rows if isinstance(rows, list) else []:
            out.append(f"    {share * 100:5.1f}%  {frame}")
    return "\n".join(out)
