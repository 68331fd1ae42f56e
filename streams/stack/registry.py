"""Apicurio Registry (Confluent-compatible API) from Maven Central, with H2 file storage."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import urllib.request
from pathlib import Path

from streams.settings import Settings
from streams.stack.java import java_binary, maven_binary
from streams.stack.process import ManagedProcess, StackError, require_port, wait_until

VERSION = "3.0.9"
ARTIFACT = f"io.apicurio:apicurio-registry-app:{VERSION}:tar.gz:all"


def registry_ready(base_url: str, timeout: float = 2.0) -> bool:
    """The registry answers a real API call (list subjects)."""
    try:
        with urllib.request.urlopen(f"{base_url.rstrip('/')}/subjects", timeout=timeout) as rsp:
            return bool(rsp.status == 200)
    except OSError:
        return False


def fetch_distribution(lib_dir: Path) -> Path:
    """Download (once per machine, via ~/.m2) and unpack the registry; returns the runner jar."""
    target = lib_dir / f"apicurio-registry-{VERSION}"
    jar = target / f"apicurio-registry-app-{VERSION}-runner.jar"
    if jar.exists():
        return jar
    download = lib_dir / "download"
    got = subprocess.run(
        [maven_binary(), "-B", "-q", "dependency:copy", f"-Dartifact={ARTIFACT}",
         f"-DoutputDirectory={download}"], capture_output=True, text=True,
    )
    archive = download / f"apicurio-registry-app-{VERSION}-all.tar.gz"
    if got.returncode != 0 or not archive.exists():
        lines = (got.stdout + got.stderr).strip().splitlines()
        raise StackError(f"downloading {ARTIFACT} from Maven Central failed (mvn exit "
                         f"{got.returncode}); check access to Maven Central; last lines:\n"
                         + "\n".join(lines[-15:]))
    partial = target.with_suffix(".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with tarfile.open(archive) as tar:
        tar.extractall(partial, filter="data")
    partial.rename(target)
    archive.unlink()
    return jar


class Registry:
    name = "registry"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dir = settings.data_dir / "registry"
        self.proc = ManagedProcess("registry", settings.run_dir,
                                   settings.log_dir / "registry.log", marker=str(self.dir))

    @property
    def managed(self) -> bool:
        return not self.settings.schema_registry_url

    @property
    def address(self) -> str:
        return self.settings.registry_url

    def healthy(self) -> bool:
        return registry_ready(self.address)

    def up(self) -> None:
        if not self.managed or self.proc.running():
            return
        port = self.settings.registry_port
        require_port(port, "Apicurio Registry", "EBI_REGISTRY_PORT")
        java = java_binary()
        jar = fetch_distribution(self.settings.data_dir / "lib")
        (self.dir / "tmp").mkdir(parents=True, exist_ok=True)
        self.proc.start([
            java, f"-Djava.io.tmpdir={self.dir / 'tmp'}", "-Xms64m", "-Xmx256m",
            "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Dquarkus.http.host=127.0.0.1", f"-Dquarkus.http.port={port}",
            "-Dapicurio.storage.kind=sql", "-Dapicurio.storage.sql.kind=h2",
            f"-Dapicurio.datasource.url=jdbc:h2:file:{self.dir / 'registry'};WRITE_DELAY=0",
            "-Dapicurio.datasource.username=sa", "-Dapicurio.datasource.password=sa",
            "-Dapicurio.datasource.jdbc.initial-size=2", "-Dapicurio.datasource.jdbc.min-size=2",
            "-Dapicurio.datasource.jdbc.max-size=10",
            "-Dquarkus.log.level=WARN", '-Dquarkus.log.category."io.apicurio".level=WARN',
            '-Dquarkus.log.category."io.quarkus.config".level=ERROR',
            "-Dquarkus.http.access-log.enabled=false", "-Dquarkus.banner.enabled=false",
            "-jar", str(jar),
        ], cwd=self.dir)
        wait_until(self.healthy, 120, f"Apicurio Registry on {self.address}", self.proc)

    def down(self) -> bool:
        return self.proc.stop(timeout=20)
