"""Load named SQL blocks (`-- name: foo` then a one-line comment) from alertd/store/sql/*.sql."""

from __future__ import annotations

import re
from pathlib import Path

SQL_DIR = Path(__file__).with_name("sql")
_BLOCK = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


class Queries:
    """Attribute access to every named query: `queries.insert_alerts`."""

    def __init__(self, directory: Path = SQL_DIR) -> None:
        self._sql: dict[str, str] = {}
        for path in sorted(directory.glob("*.sql")):
            text = path.read_text()
            parts = _BLOCK.split(text)
            for name, body in zip(parts[1::2], parts[2::2], strict=True):
                if name in self._sql:
                    raise ValueError(f"query {name} defined twice ({path.name})")
                self._sql[name] = body.strip()

    def __getattr__(self, name: str) -> str:
        try:
            return self._sql[name]
        except KeyError:
            raise AttributeError(f"no SQL query named {name!r}") from None

    def names(self) -> list[str]:
        return sorted(self._sql)


queries = Queries()
