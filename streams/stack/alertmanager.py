"""Prometheus Alertmanager for the stack: Debian's ``prometheus-alertmanager`` (0.25) on
loopback, or an existing Alertmanager that the stack only checks.

``ebi stack up`` runs it when the setting ``alertmanager`` is true (off by default, so a
plain ``make run`` starts no more than it needs). With ``alertmanager_url`` empty the stack
starts its own on ``127.0.0.1:<alertmanager_port>``: clustering off, data under
``data_dir/alertmanager``, and the routing of ``deploy/alertmanager/alertmanager.yml`` with
every receiver URL rebased on ``alertmanager_receiver_url`` when that is set (see
:func:`render_config`).
"""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

from streams.settings import PROJECT_ROOT, Settings
from streams.stack.process import ManagedProcess, StackError, require_port, wait_until

CONFIG = PROJECT_ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
# Every receiver URL in CONFIG starts with this base (the notification gateway).
RECEIVER_BASE = "http://127.0.0.1:5001"
BINARIES = ("prometheus-alertmanager", "alertmanager")


def binary() -> str | None:
    """The Alertmanager binary: Debian's name first, then upstream's."""
    for name in BINARIES:
        found = shutil.which(name) or next(
            (p for p in (f"/usr/bin/{name}", f"/usr/local/bin/{name}") if Path(p).exists()), None)
        if found:
            return found
    return None


def render_config(text: str, receiver_url: str = "") -> str:
    """The config with every receiver URL moved from :data:`RECEIVER_BASE` to
    ``receiver_url`` (unchanged when it is empty)."""
    if not receiver_url:
        return text
    return text.replace(RECEIVER_BASE, receiver_url.rstrip("/"))


def ready(base_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url.rstrip('/')}/-/ready", timeout=timeout) as rsp:
            return bool(rsp.status == 200)
    except OSError:
        return False


class Alertmanager:
    name = "alertmanager"

    def __init__(self, settings: Settings, config: Path = CONFIG) -> None:
        self.settings = settings
        self.source = config
        self.dir = settings.data_dir / "alertmanager"
        self.proc = ManagedProcess("alertmanager", settings.run_dir,
                                   settings.log_dir / "alertmanager.log", marker=str(self.dir))

    @property
    def managed(self) -> bool:
        return not self.settings.alertmanager_url

    @property
    def address(self) -> str:
        return self.settings.alertmanager_address

    @property
    def config_file(self) -> Path:
        return self.dir / "alertmanager.yml"

    def healthy(self) -> bool:
        return ready(self.address)

    def up(self) -> None:
        if not self.managed or self.proc.running():
            return
        found = binary()
        if found is None:
            raise StackError("Alertmanager: prometheus-alertmanager is not installed (Debian: "
                             "apt-get install prometheus-alertmanager, or `make system-deps`); "
                             "or point EBI_ALERTMANAGER_URL at an existing Alertmanager")
        port = self.settings.alertmanager_port
        require_port(port, "Alertmanager", "EBI_ALERTMANAGER_PORT")
        try:
            text = self.source.read_text("utf-8")
        except OSError as exc:
            raise StackError(f"Alertmanager: cannot read the config {self.source}: "
                             f"{exc.strerror}") from exc
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(render_config(text, self.settings.alertmanager_receiver_url),
                                    "utf-8")
        self.proc.start([
            found, f"--config.file={self.config_file}", f"--storage.path={self.dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
            "--log.level=warn",
        ], cwd=self.dir)
        wait_until(self.healthy, 30, f"Alertmanager on {self.address}", self.proc)

    def down(self) -> bool:
        return self.proc.stop(timeout=15)
