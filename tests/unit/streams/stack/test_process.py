import socket
import sys
from pathlib import Path

import pytest

from streams.stack.process import (
    ManagedProcess,
    StackError,
    free_port,
    port_free,
    require_port,
    wait_until,
)


def test_managed_process_start_stop(tmp_path: Path) -> None:
    proc = ManagedProcess("sleeper", tmp_path / "run", tmp_path / "log" / "s.log",
                          marker="ebi-test-sleeper")
    assert not proc.running()
    proc.start([sys.executable, "-c", "import time, sys; time.sleep(60)", "ebi-test-sleeper"])
    assert proc.running()
    assert proc.stop(timeout=5)
    assert not proc.running()
    assert not proc.pid_file.exists()
    assert proc.stop() is False


def test_pid_file_of_another_process_is_not_ours(tmp_path: Path) -> None:
    proc = ManagedProcess("x", tmp_path, tmp_path / "x.log", marker="no-such-marker-here")
    proc.pid_file.write_text("1\n")
    assert proc.pid() is None


def test_port_in_use_names_the_variable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not port_free(port)
        with pytest.raises(StackError, match=rf"port {port} .* EBI_KAFKA_PORT=<port>"):
            require_port(port, "Kafka", "EBI_KAFKA_PORT")
    assert port_free(free_port())


def test_wait_until_reports_log_tail(tmp_path: Path) -> None:
    proc = ManagedProcess("quitter", tmp_path, tmp_path / "q.log", marker="ebi-test-quitter")
    proc.start([sys.executable, "-c", "print('boom'); import sys", "ebi-test-quitter"])
    with pytest.raises(StackError, match="boom"):
        wait_until(lambda: False, 10, "quitter", proc)
