"""The samples export joins the raw recording chunk by chunk (bounded memory: it used to hold
the whole raw file as a dict of strings, about 1 KB a sample), with the same cells."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dorsimeter.export.csvfiles import export_session_csv
from dorsimeter.io import rawcsv
from dorsimeter.pipeline import Pipeline
from dorsimeter.session.results import SessionResults
from dorsimeter.sim import ShankSim
from dorsimeter.store import Store
from dorsimeter.store.recorder import SessionRecorder


def test_raw_columns_joined_in_chunks_are_the_raw_files_values(tmp_path, monkeypatch):
    sim = ShankSim(seed=4)
    raw = tmp_path / "raw.csv"
    with Store.open(tmp_path / "home") as store, rawcsv.RawCsvWriter(raw) as w:
        rec = SessionRecorder(store, "record", sensor="node", raw_path=raw)
        pipe = Pipeline(100.0)
        for i in range(0, 7000, 20):
            if i == 3500:
                sim.set_side("right")  # one raw file, both sides (the clip moved)
            b = sim.generate(20)
            if not 2000 <= i < 2100:  # these reach the store but not the raw file
                w.write(b, b.side)
            rec.add(*pipe.push(b))
        sid = rec.finish(SessionResults())
        monkeypatch.setattr(rawcsv, "CHUNK_ROWS", 333)  # many chunks, boundaries anywhere
        samples_path, _, n, _ = export_session_csv(store, sid, tmp_path / "out")
    df = pd.read_csv(samples_path)
    truth = rawcsv.read_raw_csv(raw)
    assert n == len(df) == len(truth.t_s) + 100 and set(df["side"]) == {"left", "right"}
    missing = df["acc_x_m_s2"].isna()
    assert missing.sum() == 100 and df["t_s"][missing].between(20.0, 21.0).all()
    for side in ("left", "right"):
        got = df[(df["side"] == side) & ~missing]
        m = truth.side == side
        np.testing.assert_array_equal(got["t_s"].to_numpy(), truth.t_s[m])
        np.testing.assert_array_equal(got[["acc_x_m_s2", "acc_y_m_s2", "acc_z_m_s2"]].to_numpy(),
                                      truth.acc_m_s2[m])
        np.testing.assert_array_equal(got[["gyr_x_rad_s", "gyr_y_rad_s", "gyr_z_rad_s"]]
                                      .to_numpy(), truth.gyr_rad_s[m])
