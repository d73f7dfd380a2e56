"""bench fuzz prints every class of exit 1 it saw, so none goes unread (issue 18: 46 of a
3,000-case run were never looked at)."""

from bench import bench_fuzz as bf


def test_exit_1_classes_fold_paths_and_numbers_and_are_printed(monkeypatch):
    a = bf.exit1_class(["calibrate", "--sensor", "serial:/x"],
                       "dorsimeter: error: serial port /dev/ttyUSB3: cannot open ([Errno 2] "
                       "could not open port /dev/ttyUSB3)\n")
    b = bf.exit1_class(["calibrate"], "dorsimeter: error: serial port /tmp/ab/c: cannot open "
                                      "([Errno 13] could not open port /tmp/ab/c)\n")
    assert a == b == "calibrate: serial port PATH: cannot open ([Errno N] could not open port PATH)"
    run = bf.CliRun(cases=9, seconds=1.0, codes={0: 5, 1: 3, 2: 1}, exit1={a: 1, "scan: x": 2})
    monkeypatch.setattr(bf, "_cli_parallel", lambda *_: run)
    lines, failures = bf.cli_lines(9)
    assert failures == 0
    assert lines[-2:] == [
        "cli fuzz: exit 1 (a runtime failure the property allows), 2 × scan: x",
        f"cli fuzz: exit 1 (a runtime failure the property allows), 1 × {a}"]
