"""Every named query: PostgreSQL accepts it on the migrated schema, something runs it, and it sits with its owner.

A query's file names the package that owns it (alertd/store/sql/engine.sql: alertd/engine; sql/service/alerts.sql:
alertd/service). The owner runs it; another package may run it only from a higher layer (docs/design.md, "Queries").
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from alertd.store.queries import SQL_DIR, queries

ALERTD = Path(__file__).resolve().parents[2] / "alertd"


def _layers() -> dict[str, int]:
    """Each top-level part of alertd -> its layer's height, from the import contract in pyproject.toml."""
    contract = tomllib.loads((ALERTD.parent / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"][0]
    layers = contract["layers"]  # top first; `|` and `:` join the siblings of one layer
    return {module.strip().removeprefix("alertd."): len(layers) - i
            for i, layer in enumerate(layers) for module in re.split(r"[|:]", layer)}


def _owner(sql_file: Path) -> Path:
    """The package (or top-level module) a query file is named after: sql/channels/sms.sql -> alertd/channels/sms;
    sql/service/alerts.sql (a domain of alertd/service) -> alertd/service; sql/metrics.sql -> alertd/metrics.py."""
    parts = sql_file.relative_to(SQL_DIR).with_suffix("").parts
    for k in range(len(parts), 0, -1):
        if ALERTD.joinpath(*parts[:k]).is_dir():
            return ALERTD.joinpath(*parts[:k])
    module = ALERTD / f"{parts[0]}.py"
    assert module.is_file(), f"{sql_file.name} names no package or module of alertd"
    return module


def _package(path: Path) -> tuple[str, ...]:
    """A source file's package, the way owners are named: ('channels', 'sms'), ('service',), ('metrics',)."""
    parts = path.relative_to(ALERTD).with_suffix("").parts
    return parts[:2] if parts[0] == "channels" and len(parts) > 2 else parts[:1]


def _users() -> dict[str, set[Path]]:
    """Each query name -> the alertd source files that run it (`queries.name`, or its name quoted)."""
    sources = {p: p.read_text() for p in ALERTD.rglob("*.py")}
    users: dict[str, set[Path]] = {}
    for name in queries.names():
        used = re.compile(rf"\bqueries\.{name}\b|[\"']{name}[\"']")
        users[name] = {p for p, text in sources.items() if used.search(text)}
    return users


async def test_every_query_prepares_on_the_migrated_schema(db):
    # Some queries make the session table another reads (an import's staging table, dropped at commit): made first,
    # all in one transaction.
    failures = {}
    async with db.transaction():
        for name in queries.names():
            if re.search(r"^CREATE TEMP", getattr(queries, name), re.MULTILINE):
                await db.execute(getattr(queries, name))
        for name in queries.names():
            try:
                async with db.transaction():  # a savepoint: one bad query does not abort the others' checks
                    await db.prepare(getattr(queries, name))
            except Exception as exc:  # every failure is reported at once
                failures[name] = f"{type(exc).__name__}: {exc}"
    assert failures == {}
    assert len(queries.names()) > 100  # the loader found the files in their folders


def test_every_query_is_run_by_alertd():
    unused = sorted(name for name, files in _users().items() if not files)
    assert unused == [], "named queries nothing in alertd/ runs: delete them (or move a benchmark's to bench/sql)"


def test_every_query_is_named_verb_noun_and_run_by_its_owner_or_a_higher_layer():
    verbs = {"ack", "begin", "cancel", "check", "claim", "clear", "count", "create", "drop", "end", "fail", "find",
             "forget", "get", "hold", "insert", "list", "lock", "mark", "measure", "merge", "move", "notify", "open",
             "ping", "purge", "raise", "record", "redeem", "remove", "resolve", "retry", "revoke", "set", "stamp", "update",
             "upsert", "vacuum", "warm", "write"}
    misnamed = [n for n in queries.names()
                if not re.fullmatch(r"[a-z]+(_[a-z0-9]+)*", n) or n.split("_")[0] not in verbs]
    assert misnamed == []
    layers = _layers()  # a query shared by two packages belongs to the lower one; the higher one may run it too
    strays = []
    for name, files in _users().items():
        owner = _owner(queries.files[name])
        owner_package = _package(owner if owner.suffix else owner / "__init__.py")
        if not any(f == owner or owner in f.parents for f in files):
            strays.append(f"{name}: in {queries.files[name].name}, but {owner.name} never runs it")
        for f in files:
            if f == owner or owner in f.parents:
                continue
            if layers[_package(f)[0]] <= layers[owner_package[0]]:
                strays.append(f"{name}: owned by {'/'.join(owner_package)}, run by {f.relative_to(ALERTD)}")
    assert strays == []


async def test_alertd_sessions_never_jit_compile(settings):
    """A plan estimated past jit_above_cost (a table grown faster than its statistics) spent most of a second
    compiling a three-row read: every connection alertd opens, pooled or not, has JIT off."""
    from alertd.store.db import connect, create_pool

    pool = await create_pool(settings.database_url, 1, 2)
    try:
        async with pool.acquire() as conn:
            assert await conn.fetchval("SHOW jit") == "off"
    finally:
        await pool.close()
    conn = await connect(settings.database_url)
    try:
        assert await conn.fetchval("SHOW jit") == "off"
        assert await conn.fetchval("SELECT boot_val FROM pg_settings WHERE name = 'jit'") == "on"  # the server's own
    finally:
        await conn.close()
