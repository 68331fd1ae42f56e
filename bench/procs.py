"""Child processes of the bench: `ebi worker`, `ebi sink`, the baseline; env, start, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.measure import Usage, proc_usage
from streams.settings import Settings

# Settings passed to the children explicitly (the rest keep their defaults).
CHILD_FIELDS = ("data_dir", "topic_prefix", "topic_partitions", "worker_id", "worker_instance",
                "sink_group", "sink_batch_rows", "sink_batch_seconds", "log_level",
                "policy_file", "kafka_security", "identity")


def child_env(settings: Settings) -> dict[str, str]:
    """The parent's environment without its EBI_* variables, plus this scenario's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EBI_")}
    env["EBI_KAFKA_BOOTSTRAP"] = settings.bootstrap
    env["EBI_SCHEMA_REGISTRY_URL"] = settings.registry_url
    env["EBI_CLICKHOUSE_URL"] = settings.clickhouse
    for name in CHILD_FIELDS:
        env[f"EBI_{name.upper()}"] = str(getattr(settings, name))
    return env


EXIT_RESTART = 75   # `ebi worker` asks its supervisor to start it again (streams/cli/run.py)


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    may_exit: bool = False     # exiting with 0 is its normal end (the baseline)
    rusage: Usage | None = None  # CPU and peak RSS once reaped (wait4)
    argv: list[str] | None = None         # how it was started (for a restart)
    env: dict[str, str] | None = None
    module: str = "streams"
    restartable: bool = False  # exit 75 means "run me again", as under `ebi run`
    restarts: int = 0
    cpu_before: float = 0.0    # CPU of the processes it replaced

    @property
    def pid(self) -> int:
        return self.proc.pid

    def usage(self) -> Usage | None:
        try:
            now = proc_usage(self.proc.pid)
        except (OSError, IndexError, ValueError):
            return None
        return Usage(now.cpu_s + self.cpu_before, now.peak_rss_mb)

    def restart_if_asked(self) -> bool:
        """Start the process again when it exited with 75 and may be restarted."""
        if not self.restartable or self.poll() != EXIT_RESTART or self.argv is None:
            return False
        self.cpu_before += self.rusage.cpu_s if self.rusage else 0.0
        self.proc = _popen(self.module, self.argv, self.env, self.log)
        self.restarts += 1
        return True

    def poll(self) -> int | None:
        """The exit code once it ended (reaped with wait4, keeping its rusage)."""
        if self.proc.returncode is None:
            try:
                pid, status, ru = os.wait4(self.proc.pid, os.WNOHANG)
            except ChildProcessError:
                return self.proc.poll()
            if pid:
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                self.rusage = Usage(ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024)
        return self.proc.returncode

    def check(self) -> None:
        code = self.poll()
        if code is not None and (code != 0 or not self.may_exit):
            raise RuntimeError(f"{self.name} exited with {code}; see {self.log}: "
                               f"{tail(self.log)}")


def tail(path: Path, lines: int = 8) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def spawn(name: str, argv: list[str], env: dict[str, str], log_dir: Path,
          module: str = "streams") -> Child:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    return Child(name, _popen(module, argv, env, log), log, argv=argv, env=env, module=module)


def _popen(module: str, argv: list[str], env: dict[str, str] | None, log: Path
           ) -> subprocess.Popen[bytes]:
    """``python -m module argv...`` in its own session, output appended to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", module, *argv], env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def stop(child: Child, timeout: float = 20.0) -> int | None:
    """SIGTERM the child's process group, SIGKILL after ``timeout``; returns the exit code."""
    if child.poll() is None:
        try:
            os.killpg(child.proc.pid, signal.SIGTERM)
            child.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.proc.pid, signal.SIGKILL)
            child.proc.wait()
        except ProcessLookupError:
            pass
    return child.proc.returncode


def run_step(argv: list[str], env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "streams", *argv], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ebi {' '.join(argv)} failed ({done.returncode}): "
                           f"{done.stdout.strip()[-800:]}")


def reap(child: Child, timeout: float) -> Usage | None:
    """Wait for a child that exits by itself; its CPU and peak RSS from wait4 (None if it
    had to be killed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            return child.rusage
        time.sleep(0.05)
    stop(child)
    return None
