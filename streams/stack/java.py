"""Java and Maven: version checks and classpaths resolved from Maven Central through a pom."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

from streams.stack.process import StackError

JAVA_MIN = 17


def java_binary() -> str:
    java = shutil.which("java")
    if java is None:
        raise StackError(
            f"Java {JAVA_MIN} or newer is needed to run Kafka and Apicurio, and `java` is not on "
            f"PATH; install it (Debian: apt-get install openjdk-{JAVA_MIN}-jre-headless)"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):  # "1.8.0" style
        major = int(match.group(2))
    if major < JAVA_MIN:
        raise StackError(f"Java {JAVA_MIN} or newer is needed; `{java} -version` says: "
                         f"{out.splitlines()[0] if out else '?'}")
    return java


def maven_binary() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(
            "Maven 3.6 or newer is needed to fetch the Kafka and Apicurio jars from Maven "
            "Central, and `mvn` is not on PATH; install it (Debian: apt-get install maven)"
        )
    return mvn


def resolve_classpath(pom: Path, cache_dir: Path) -> str:
    """The runtime classpath of ``pom``'s dependencies, resolved once per pom content.

    Jars stay in the local Maven repository (~/.m2), so they are downloaded once per machine.
    """
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:16]
    cached = cache_dir / f"{pom.parent.name}-{digest}.classpath"
    if cached.exists():
        classpath = cached.read_text().strip()
        if all(Path(p).exists() for p in classpath.split(":")):
            return classpath
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    proc = subprocess.run(
        [maven_binary(), "-B", "-q", "-f", str(pom), "dependency:build-classpath",
         "-Dmdep.includeScope=runtime", f"-Dmdep.outputFile={tmp}"],
        capture_output=True, text=True,
    )
    if proc.returncode != 0 or not tmp.exists():
        output = (proc.stdout + proc.stderr).strip().splitlines()
        raise StackError(
            f"downloading the jars of {pom} from Maven Central failed (mvn exit "
            f"{proc.returncode}); check network access to Maven Central and ~/.m2/settings.xml. "
            "Last lines:\n" + "\n".join(output[-15:])
        )
    tmp.rename(cached)
    return cached.read_text().strip()
