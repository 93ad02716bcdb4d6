"""Cell towers from an OpenCellID-format CSV, to locate a button press that carries a cell and no GPS."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from alertd.core.model import Invalid
from alertd.store import queries

# OpenCellID's column order (its files may or may not start with this header line).
COLUMNS = ["radio", "mcc", "net", "area", "cell", "unit", "lon", "lat", "range", "samples", "changeable",
           "created", "updated", "averageSignal"]


def read(path: Path) -> Iterator[tuple]:
    """Rows as (radio, mcc, mnc, lac, cid, lon, lat, range_m, updated_at); a bad line raises Invalid naming it."""
    with path.open(newline="") as f:
        for number, row in enumerate(csv.reader(f), start=1):
            if not row or (number == 1 and row[0].strip().lower() == "radio"):
                continue
            try:
                rec = dict(zip(COLUMNS, row, strict=False))
                lat, lon = float(rec["lat"]), float(rec["lon"])
                if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                    raise ValueError("lat/lon out of range")
                updated = rec.get("updated")
                yield (rec["radio"] or None, int(rec["mcc"]), int(rec["net"]), int(rec["area"]), int(rec["cell"]),
                       lon, lat, float(rec["range"]) if rec.get("range") else None,
                       datetime.fromtimestamp(int(updated), UTC) if updated else None)
            except (KeyError, ValueError) as exc:
                raise Invalid(f"{path.name} line {number}: {exc}") from None


async def import_cells(conn: asyncpg.Connection, rows) -> int:
    """COPY the rows in and merge them, all or nothing; returns how many rows were read."""
    rows = list(rows)
    async with conn.transaction():
        await conn.execute(queries.create_cell_import)
        await conn.copy_records_to_table("cell_import", records=rows)
        await conn.execute(queries.merge_cell_import)
    return len(rows)
