"""``python -m streams <argv>`` as a real child process for the integration tests (no tests
here): its own process group, its output in a log file, restarted like a supervisor would
when it exits with 75 (it found input offsets missing and stopped so that a fresh consumer
reads them again), SIGTERM or SIGKILL on request."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

RESTART_EXIT = 75


class Process:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.log = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.restarts = 0
        self.exits: list[int] = []
        self._stopping = False
        self._lock = threading.Lock()

    def start(self) -> Process:
        with self._lock:
            self._stopping = False
            self.starts += 1
            self.log.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.log, "ab")  # noqa: SIM115 - owned by the child
            handle.write(f"\n==== start {self.starts} ====\n".encode())
            handle.flush()
            proc = subprocess.Popen([sys.executable, "-m", "streams", *self.argv], env=self.env,
                                    stdout=handle, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            self.proc = proc
        threading.Thread(target=self._supervise, args=(proc,), daemon=True).start()
        return self

    def _supervise(self, proc: subprocess.Popen[bytes]) -> None:
        code = proc.wait()
        if proc is not self.proc:
            return
        self.exits.append(code)
        if code == RESTART_EXIT and not self._stopping:
            self.restarts += 1
            self.start()

    def kill(self) -> None:
        """SIGKILL: no flush, no commit, no leaving the group."""
        with self._lock:
            self._stopping = True
            proc = self.proc
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)

    def stop(self, timeout: float = 45.0) -> int | None:
        with self._lock:
            self._stopping = True
            proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return proc.returncode

    def running(self) -> bool:
        proc = self.proc
        return proc is not None and proc.poll() is None

    def alive(self) -> bool:
        """Running, or restarting after exit 75."""
        proc = self.proc
        return proc is not None and (proc.poll() is None or proc.returncode == RESTART_EXIT)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
