"""Parquet and XLSX exports: the stored numbers come back bit for bit, typed, with their units;
and a user's text that looks like a formula is inert in every export."""

from __future__ import annotations

import csv
import json
import math
import os
import stat
import zipfile

import numpy as np
import pytest

from dorsimeter.cli import main
from dorsimeter.export.norms import load_norms
from dorsimeter.io.rawcsv import read_raw_csv
from dorsimeter.store import Store
from dorsimeter.store.summary import asymmetry, summarize
from tests.export.sessions import HOSTILE_NAME, HOSTILE_NOTE, two_leg_session

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
openpyxl = pytest.importorskip("openpyxl")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tables")
    home = tmp / "home"
    with Store.open(home) as store:
        sid = two_leg_session(store, tmp / "raw", seconds=40.0)
    out = tmp / "out"
    for fmt in ("parquet", "xlsx", "csv"):
        assert main(["export", str(sid), "--format", fmt, "--out", str(out),
                     "--home", str(home)]) == 0
    store = Store.open(home)
    yield store, sid, out
    store.close()


def _by_side(store, sid):
    s = store.samples(sid)
    side = np.array(s.side)
    return s, {k: np.flatnonzero(side == k) for k in ("left", "right")}


def _expected_samples(store, sid):
    """The stored samples in the exports' order (left then right) with their raw values."""
    s, idx = _by_side(store, sid)
    order = np.concatenate([idx["left"], idx["right"]])
    raw = {str(r.side[0]): r for r in map(read_raw_csv, store.session(sid).raw_paths)}
    acc = np.vstack([raw[k].acc_m_s2 for k in ("left", "right")])
    gyr = np.vstack([raw[k].gyr_rad_s for k in ("left", "right")])
    return s, order, acc, gyr


def test_parquet_is_typed_with_units_and_round_trips_exactly(exported):
    store, sid, out = exported
    table = pq.read_table(out / f"dorsimeter-session-{sid}-samples.parquet")
    s, order, acc, gyr = _expected_samples(store, sid)
    schema = table.schema
    assert schema.field("t_s").type == pa.float64()
    assert schema.field("heel_lift_bool").type == pa.bool_()
    assert schema.field("rep_number").type == pa.int32()
    assert schema.field("time_utc_iso8601").type == pa.timestamp("us", tz="UTC")
    assert schema.field("tibia_angle_deg").metadata == {b"unit": b"deg"}
    assert schema.field("acc_x_m_s2").metadata == {b"unit": b"m/s^2"}
    units = json.loads(schema.metadata[b"dorsimeter.units"])
    assert units["gyr_z_rad_s"] == "rad/s" and units["t_s"] == "s"
    session = json.loads(schema.metadata[b"dorsimeter.session"])
    assert session["athlete"] == HOSTILE_NAME and session["id"] == sid
    d = table.to_pydict()
    assert d["t_s"] == s.t_s[order].tolist()
    assert d["tibia_angle_deg"] == s.tibia_angle_deg[order].tolist()  # bit for bit
    assert d["knee_track_deg"] == s.knee_track_deg[order].tolist()
    assert d["side"] == [s.side[i] for i in order]
    # the session's 1-based numbers of the counted reps, exactly as the CSV export has them
    with open(out / f"dorsimeter-session-{sid}-samples.csv", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert d["rep_number"] == [int(r["rep_number"]) if r["rep_number"] else None for r in rows]
    assert d["exercise"] == [r["exercise"] or None for r in rows]
    assert any(v is not None for v in d["rep_number"])
    assert d["heel_lift_bool"] == [None if s.heel_lift[i] is None else bool(s.heel_lift[i])
                                   for i in order]
    assert sum(1 for v in d["heel_lift_bool"] if v) > 100
    assert np.array_equal(np.column_stack([d[f"acc_{a}_m_s2"] for a in "xyz"]), acc)
    assert np.array_equal(np.column_stack([d[f"gyr_{a}_rad_s"] for a in "xyz"]), gyr)
    trials = pq.read_table(out / f"dorsimeter-session-{sid}-trials.parquet").to_pydict()
    stored = store.trials(sid)
    assert trials["angle_deg"] == [t.angle_deg for t in stored]
    assert trials["valid_bool"] == [t.valid for t in stored]
    assert trials["t_start_s"] == [t.t_start_s for t in stored]
    assert trials["athlete"] == [HOSTILE_NAME] * len(stored)


def _sheet_rows(path, name):
    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        return [list(r) for r in wb[name].iter_rows(values_only=True)]
    finally:
        wb.close()


def test_xlsx_samples_and_trials_round_trip_exactly(exported):
    store, sid, out = exported
    path = out / f"dorsimeter-session-{sid}.xlsx"
    rows = _sheet_rows(path, "Samples")
    header = [h.split(" [")[0] for h in rows[0]]
    cols = {h: [r[i] for r in rows[1:]] for i, h in enumerate(header)}
    s, order, acc, gyr = _expected_samples(store, sid)
    assert len(rows) - 1 == len(s)
    assert cols["t_s"] == s.t_s[order].tolist()
    assert cols["tibia_angle_deg"] == s.tibia_angle_deg[order].tolist()  # bit for bit
    assert np.array_equal(np.column_stack([cols[f"acc_{a}_m_s2"] for a in "xyz"]), acc)
    assert np.array_equal(np.column_stack([cols[f"gyr_{a}_rad_s"] for a in "xyz"]), gyr)
    assert rows[0][header.index("tibia_angle_deg")] == "tibia_angle_deg [deg]"
    trows = _sheet_rows(path, "Trials")
    th = trows[0]
    stored = store.trials(sid)
    assert [r[th.index("angle_deg [deg]")] for r in trows[1:]] == [t.angle_deg for t in stored]
    assert [r[th.index("valid_bool")] for r in trows[1:]] == [t.valid for t in stored]


def test_xlsx_results_sheet_reads_like_the_report(exported):
    store, sid, out = exported
    rows = _sheet_rows(out / f"dorsimeter-session-{sid}.xlsx", "Results")
    sides = summarize(store.trials(sid))
    norms = load_norms()
    by_label = {r[0]: r for r in rows if r and r[0] is not None}
    for side in ("left", "right"):
        r = by_label[side]
        assert r[1] == sides[side].best_valid_deg and r[2] == sides[side].mean_best3_deg
        assert (r[3], r[4], r[5]) == (sides[side].n_scored, sides[side].n_trials,
                                      sides[side].n_invalid)
        assert r[7] == norms.angle_line(side, sides[side].best_valid_deg)
        assert r[7].endswith("Bennell 1998")
    a = asymmetry(sides)
    assert by_label["left − right (°)"][1] == a.diff_deg
    assert by_label["of the better side (%)"][2] == f"band {a.band}"
    assert by_label["knee-to-wall difference (cm)"][7].endswith("Hoch & McKeon 2011")
    assert "Powden 2015" in by_label["minimal detectable change"][7]
    assert "Aust J Physiother" in by_label["Bennell 1998"][7]
    # the band is coloured: the band cell's fill
    wb = openpyxl.load_workbook(out / f"dorsimeter-session-{sid}.xlsx")
    ws = wb["Results"]
    band = next(c for row in ws.iter_rows() for c in row if c.value == f"band {a.band}")
    assert band.fill.fgColor.rgb.endswith({"<10 %": "C8E6C9", "10–25 %": "FFE082",
                                           ">25 %": "FFAB91"}[a.band])


def test_a_formula_like_name_is_inert_in_every_export(exported):
    store, sid, out = exported
    # XLSX: the text is kept whole, as a text cell with the quote prefix; no formula anywhere
    path = out / f"dorsimeter-session-{sid}.xlsx"
    wb = openpyxl.load_workbook(path)
    cells = [c for ws in wb for row in ws.iter_rows() for c in row
             if c.value in (HOSTILE_NAME, HOSTILE_NOTE)]
    assert {c.value for c in cells} == {HOSTILE_NAME, HOSTILE_NOTE}
    assert all(c.data_type == "s" and c.quotePrefix for c in cells)
    with zipfile.ZipFile(path) as z:
        xml = "".join(z.read(n).decode("utf-8") for n in z.namelist() if n.endswith(".xml"))
    assert "<f>" not in xml and "<f " not in xml  # no formula element in any sheet
    # CSV: the cell starts with an apostrophe, so a spreadsheet shows it as text
    with open(out / f"dorsimeter-session-{sid}-trials.csv", encoding="utf-8-sig") as f:
        athletes = {row["athlete"] for row in csv.DictReader(f)}
    assert athletes == {"'" + HOSTILE_NAME}
    # Parquet: a string column (data, never evaluated), the text exactly as given
    t = pq.read_table(out / f"dorsimeter-session-{sid}-trials.parquet")
    assert t.schema.field("athlete").type == pa.string()
    assert set(t.column("athlete").to_pylist()) == {HOSTILE_NAME}
    # HTML report: escaped text, no link; BIDS and OpenSim carry no user text at all
    from html import escape

    from dorsimeter.export.report import write_report

    page = write_report(store, sid, out / "report.html").read_text(encoding="utf-8")
    assert escape(HOSTILE_NAME) in page and HOSTILE_NAME not in page and "href" not in page
    assert escape(HOSTILE_NOTE) in page


def test_new_export_files_are_owner_only(exported):
    _, sid, out = exported
    for name in (f"dorsimeter-session-{sid}.xlsx", f"dorsimeter-session-{sid}-samples.parquet",
                 f"dorsimeter-session-{sid}-trials.parquet"):
        assert stat.S_IMODE(os.stat(out / name).st_mode) == 0o600
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_unknown_values_are_empty_not_zero(exported):
    store, sid, out = exported
    d = pq.read_table(out / f"dorsimeter-session-{sid}-samples.parquet").to_pydict()
    s, order, _, _ = _expected_samples(store, sid)
    unknown = [i for i, k in enumerate(order) if s.rep[k] is None]
    assert unknown and all(d["rep_number"][i] is None for i in unknown)
    assert not any(isinstance(v, float) and math.isnan(v) for v in d["acc_x_m_s2"])


def test_samples_beyond_a_sheets_rows_continue_on_the_next_sheet(exported, tmp_path,
                                                                 monkeypatch):
    from dorsimeter.export import xlsx

    store, sid, _ = exported
    monkeypatch.setattr(xlsx, "MAX_ROWS", 3001)  # Excel's is 1,048,576: same code path
    path = xlsx.export_xlsx(store, sid, tmp_path)
    wb = openpyxl.load_workbook(path, read_only=True)
    parts = [n for n in wb.sheetnames if n.startswith("Samples")]
    n = store.count_samples(sid)
    assert parts == ["Samples"] + [f"Samples {k}" for k in range(2, len(parts) + 1)]
    assert len(parts) == -(-n // 3000) >= 3
    t_s = []
    for name in parts:
        rows = list(wb[name].iter_rows(values_only=True))
        assert rows[0][1] == "t_s [s]" and len(rows) <= 3001
        t_s += [r[1] for r in rows[1:]]
    wb.close()
    s, order, _, _ = _expected_samples(store, sid)
    assert t_s == s.t_s[order].tolist()
