"""Load named SQL blocks (`-- name: verb_noun` then a one-line comment) from alertd/store/sql/**/*.sql.

Each file is named after the package that runs its queries (sql/engine.sql: alertd/engine; sql/service/alerts.sql:
alertd/service, its alerts): see docs/design.md, "Queries"; tests/test_queries.py prepares every one.
"""

from __future__ import annotations

import re
from pathlib import Path

SQL_DIR = Path(__file__).with_name("sql")
_BLOCK = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


class Queries:
    """Attribute access to every named query by its name: `queries.<name>`."""

    def __init__(self, directory: Path = SQL_DIR) -> None:
        self._sql: dict[str, str] = {}
        self.files: dict[str, Path] = {}  # query name -> the file that holds it
        for path in sorted(directory.rglob("*.sql")):
            text = path.read_text()
            parts = _BLOCK.split(text)
            for name, body in zip(parts[1::2], parts[2::2], strict=True):
                if name in self._sql:
                    raise ValueError(f"query {name} defined twice ({path.name})")
                self._sql[name] = body.strip()
                self.files[name] = path

    def __getattr__(self, name: str) -> str:
        try:
            return self._sql[name]
        except KeyError:
            raise AttributeError(f"no SQL query named {name!r}") from None

    def names(self) -> list[str]:
        return sorted(self._sql)


queries = Queries()
