"""``analyze --offline`` streamed (issue 18): the file read chunk by chunk, fused in windows
of each gap-free stretch, the readings written as they come."""

import numpy as np

from dorsimeter.cli import main
from dorsimeter.io.rawcsv import CHUNK_ROWS, RawCsvWriter, read_raw_csv
from dorsimeter.io.readings import ReadingsCsvWriter, read_readings_csv
from dorsimeter.pipeline import analyze, calibrate_recording
from dorsimeter.sim import ShankSim


def test_streamed_offline_equals_the_whole_recording_fused_at_once(tmp_path, capsys):
    """A recording longer than a read chunk, with a sensor restart and a link gap (three
    stretches, each shorter than a window): the command's readings are bit-identical to the
    whole recording re-analysed in memory (``pipeline.analyze``, one offline fusion per
    stretch), row for row, and it prints the same session."""
    sim = ShankSim(seed=5)
    a = sim.generate(30_000)
    b = sim.generate(20_000)
    c = sim.generate(15_000)
    b.restart = True
    c.t_s = c.t_s + 2.0  # a 2 s link gap: a new stretch
    path = tmp_path / "long.csv"
    with RawCsvWriter(path) as w:
        for batch in (a, b, c):
            for i in range(0, len(batch), 5000):
                w.write(batch.slice(i, i + 5000), "left")
    rec = read_raw_csv(path)
    assert len(rec) > CHUNK_ROWS and rec.restarts == 1
    out = tmp_path / "readings.csv"
    assert main(["analyze", str(path), "--offline", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    cals = calibrate_recording(rec.chunks(), rec.rate_hz, sides={"left"})
    events: list = []
    want = analyze(rec, cals, offline=True, events=events)
    assert len(want) == len(rec)
    with ReadingsCsvWriter(tmp_path / "want.csv") as w:
        w.write(want)
    assert out.read_bytes() == (tmp_path / "want.csv").read_bytes()
    assert f"wrote {len(rec)} readings" in printed
    assert sum(e.kind == "rep" for e in events) >= 3
    # and it is the offline reading, not the live one
    assert main(["analyze", str(path), "--out", str(tmp_path / "live.csv")]) == 0
    live = read_readings_csv(tmp_path / "live.csv")
    assert not np.array_equal(live.tibia_angle_deg, read_readings_csv(out).tibia_angle_deg)
