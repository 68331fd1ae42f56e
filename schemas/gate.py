"""The schema gate: every current ``.avsc`` against its released versions, offline.

Released versions live in ``schemas/releases/<version>/<Record>.avsc`` (see the README
there). Each record is checked under the compatibility rule of the topics that carry it
(:func:`rule`): FULL_TRANSITIVE where senders write, BACKWARD_TRANSITIVE where only the
worker writes. ``make test`` runs it (``ebi schemas check --released``), so a breaking change
fails the build before it reaches a registry.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from schemas import compat
from schemas.catalog.model import Catalog

INPUT_RULE = "FULL_TRANSITIVE"
INTERNAL_RULE = "BACKWARD_TRANSITIVE"


def releases_dir() -> Traversable:
    return resources.files("schemas").joinpath("releases")


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", name))


def released(record: str, root: Traversable | None = None) -> list[tuple[str, str]]:
    """``(release, schema text)`` of every release that has ``record``, oldest first."""
    root = root or releases_dir()
    found = []
    for release in sorted((d for d in root.iterdir() if d.is_dir()),
                          key=lambda d: _version_key(d.name)):
        path = release.joinpath(f"{record}.avsc")
        if path.is_file():
            found.append((release.name, path.read_text("utf-8")))
    return found


def rule(catalog: Catalog, record: str) -> str:
    """The compatibility rule of a record: the strictest of the topics that carry it."""
    inputs = {kind.input.record for kind in catalog.types}
    return INPUT_RULE if record in inputs else INTERNAL_RULE


@dataclass(frozen=True)
class GateResult:
    record: str
    rule: str
    releases: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def check(catalog: Catalog, root: Traversable | None = None) -> list[GateResult]:
    """Every schema of the catalog's topics against its released versions."""
    records = sorted({topic.record for topic in catalog.all_topics()})
    out = []
    for record in records:
        versions = released(record, root)
        mode = rule(catalog, record)
        numbered = [(i + 1, text) for i, (_, text) in enumerate(versions)]
        problems = compat.check(catalog.schemas.text(record), numbered, mode)
        out.append(GateResult(record, mode, len(versions),
                              tuple(_named(p, versions) for p in problems)))
    return out


def _named(problem: str, versions: list[tuple[str, str]]) -> str:
    """A compat message with "version N" told as the release it is."""
    return re.sub(r"version (\d+)", lambda m: f"release {versions[int(m.group(1)) - 1][0]}",
                  problem)


def release(catalog: Catalog, version: str, root: Path) -> Path:
    """Copy the current schemas of the catalog's topics into ``root/version``."""
    target = root / version
    if target.exists():
        raise FileExistsError(f"release {version} already exists in {root}")
    target.mkdir(parents=True)
    for record in sorted({topic.record for topic in catalog.all_topics()}):
        for d in catalog.schemas.dirs:
            path = d.joinpath(f"{record}.avsc")
            if path.is_file():
                with resources.as_file(path) as src:
                    shutil.copyfile(src, target / f"{record}.avsc")
                break
    return target
