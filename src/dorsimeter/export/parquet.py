"""Parquet export (pyarrow): the samples and the trials of a session as typed columns.

Same column names as the CSV export (plus the tibia orientation quaternion), but typed: float64
for quantities, bool for flags, int32 for counts, ``timestamp[us, UTC]`` for the UTC time, nulls
for unknown. Each field's unit is in its field metadata (``unit``), all of them together and the
session (id, athlete, sensor, start) in the schema metadata (``dorsimeter.units``,
``dorsimeter.session``). Text is stored exactly as given: Parquet cells are data, never formulas.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from dorsimeter.export.tables import (
    UNITS,
    SessionTables,
    sample_columns,
    session_tables,
    trial_columns,
)
from dorsimeter.paths import atomic_private, private_dir
from dorsimeter.store.db import Store, parse_utc

INT_COLUMNS = {"rep_number", "set_number", "session_id"}
TEXT_COLUMNS = {"side", "sensor", "heel_source", "phase", "athlete", "exercise"}


def _arrow_type(name: str):
    import pyarrow as pa

    if name.endswith("_iso8601"):
        return pa.timestamp("us", tz="UTC")
    if name.endswith("_bool"):
        return pa.bool_()
    if name in INT_COLUMNS:
        return pa.int32()
    if name in TEXT_COLUMNS:
        return pa.dictionary(pa.int32(), pa.string()) if name == "side" else pa.string()
    return pa.float64()


def to_table(cols: dict[str, list], tables: SessionTables, what: str):
    import pyarrow as pa

    fields, arrays = [], []
    for name, values in cols.items():
        typ = _arrow_type(name)
        if name.endswith("_iso8601"):
            values = [None if v is None else parse_utc(v) for v in values]
        arr = pa.array(values, type=pa.string() if name == "side" else typ)
        if name == "side":
            arr = arr.dictionary_encode()
        meta = {"unit": UNITS[name]} if name in UNITS else {}
        fields.append(pa.field(name, arr.type, nullable=True, metadata=meta or None))
        arrays.append(arr)
    info = tables.info
    schema = pa.schema(fields, metadata={
        "dorsimeter.table": what,
        "dorsimeter.units": json.dumps({k: UNITS[k] for k in cols if k in UNITS}),
        "dorsimeter.session": json.dumps({
            "id": info.id, "athlete": info.athlete, "sensor": info.sensor,
            "start_utc": info.start_utc, "kind": info.kind, "notes": info.notes},
            ensure_ascii=False),
    })
    return pa.Table.from_arrays(arrays, schema=schema)


def export_parquet(store: Store, ref: int | str, out_dir: str | os.PathLike) -> list[Path]:
    """Write ``dorsimeter-session-<id>-samples.parquet`` and ``-trials.parquet`` (0600)."""
    import pyarrow.parquet as pq

    tables = session_tables(store, ref)
    out = private_dir(Path(out_dir))
    stem = f"dorsimeter-session-{tables.info.id}"
    paths = []
    for what, cols in (("samples", sample_columns(tables)), ("trials", trial_columns(tables))):
        path = out / f"{stem}-{what}.parquet"
        with atomic_private(path, "wb") as f:
            pq.write_table(to_table(cols, tables, what), f, compression="zstd")
        paths.append(path)
    return paths
