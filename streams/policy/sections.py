"""Reading one typed policy section: known keys only, durations and counts checked, each rule
with its source. The section modules (:mod:`.hazards`, :mod:`.blindspots`) build their frozen
dataclasses with :class:`Section`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any


class Section:
    """The keys of one ``[name]`` table of the policy file, read once each; :meth:`done`
    rejects keys nobody read (a misspelt rule must not pass silently as a default)."""

    def __init__(self, data: dict[str, Any], name: str) -> None:
        from streams.policy import PolicyError

        table = data.get(name, {})
        if not isinstance(table, dict):
            raise PolicyError(f"[{name}]: expected a table of keys, not {type(table).__name__}")
        self.name = name
        self.table = table
        self.read: set[str] = set()

    def _take(self, key: str, default: Any) -> Any:
        self.read.add(key)
        return self.table.get(key, default)

    def duration(self, key: str, default: str, positive: bool = True) -> timedelta:
        from streams.policy import PolicyError, parse_duration

        value = parse_duration(self._take(key, default), f"{self.name}.{key}")
        if positive and value <= timedelta(0):
            raise PolicyError(f"{self.name}.{key}: must be longer than 0")
        return value

    def count(self, key: str, default: int, least: int = 1) -> int:
        from streams.policy import PolicyError

        value = self._take(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise PolicyError(f"{self.name}.{key}: {value!r} is not a whole number >= {least}")
        return value

    def text(self, key: str, default: str) -> str:
        from streams.policy import PolicyError

        value = self._take(key, default)
        if not isinstance(value, str) or not value.strip():
            raise PolicyError(f"{self.name}.{key}: expected a non-empty text")
        return value

    def flag(self, key: str, default: bool) -> bool:
        from streams.policy import PolicyError

        value = self._take(key, default)
        if not isinstance(value, bool):
            raise PolicyError(f"{self.name}.{key}: expected true or false, not {value!r}")
        return value

    def done(self, others: frozenset[str] = frozenset()) -> None:
        """Fail on keys of the section that neither this reader nor ``others`` (keys read
        elsewhere) knows."""
        from streams.policy import PolicyError

        unknown = sorted(set(self.table) - self.read - others)
        if unknown:
            known = ", ".join(sorted(self.read | others))
            raise PolicyError(f"[{self.name}]: unknown key(s) {', '.join(unknown)}; "
                              f"known: {known}")
