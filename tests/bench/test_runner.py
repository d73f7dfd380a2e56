"""``python -m bench``: every bench module runs; a failing one is reported, the rest still run."""

import sys

from bench.__main__ import main, modules


def test_lists_the_benchmarks_of_the_repo():
    names = modules([])
    assert {"bench_accuracy", "bench_broad", "bench_speed", "bench_rates",
            "bench_gaps"} <= set(names)
    assert modules(["speed"]) == ["bench_speed"]


def test_a_failing_module_is_reported_and_the_others_still_run(tmp_path, monkeypatch, capsys):
    pkg = tmp_path / "fakebench"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "bench_a_fails.py").write_text("def main():\n    raise ValueError('boom')\n")
    (pkg / "bench_b_ok.py").write_text("def main():\n    print('| table | 1.0 |')\n")
    (pkg / "helper.py").write_text("raise RuntimeError('not a bench module')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    rc = main([], package="fakebench")
    out = capsys.readouterr().out
    assert rc == 1
    assert "bench_a_fails FAILED: ValueError: boom" in out
    assert "| table | 1.0 |" in out and "benchmarks failed: bench_a_fails" in out
    for name in ("fakebench", "fakebench.bench_a_fails", "fakebench.bench_b_ok"):
        sys.modules.pop(name, None)


def test_options_after_the_module_words_go_to_the_modules_that_take_them(tmp_path, monkeypatch,
                                                                          capsys):
    from bench.__main__ import split_args

    assert split_args(["accuracy", "--athletes", "2"]) == (["accuracy"], ["--athletes", "2"])
    assert split_args(["speed"]) == (["speed"], [])
    pkg = tmp_path / "argbench"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "bench_takes.py").write_text("def main(argv):\n    print('got', argv)\n")
    (pkg / "bench_plain.py").write_text("def main():\n    print('plain ran')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["--athletes", "2"], package="argbench") == 0
    out = capsys.readouterr().out
    assert "got ['--athletes', '2']" in out and "plain ran" in out
    for name in ("argbench", "argbench.bench_takes", "argbench.bench_plain"):
        sys.modules.pop(name, None)


def test_help_is_not_a_failure_and_a_refused_option_has_no_traceback(tmp_path, monkeypatch,
                                                                    capsys):
    pkg = tmp_path / "helpbench"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "bench_opts.py").write_text(
        "import argparse\n"
        "def main(argv):\n"
        "    ap = argparse.ArgumentParser(prog='opts')\n"
        "    ap.add_argument('--athletes', type=int)\n"
        "    ap.parse_args(argv)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["--help"], package="helpbench") == 0
    out = capsys.readouterr()
    assert "--athletes" in out.out and "FAILED" not in out.out and "Traceback" not in out.err
    assert main(["--athletes", "many"], package="helpbench") == 1
    out = capsys.readouterr()
    assert "bench_opts FAILED: its options were refused (exit 2)" in out.out
    assert "invalid int value: 'many'" in out.err and "Traceback" not in out.err
    for name in ("helpbench", "helpbench.bench_opts"):
        sys.modules.pop(name, None)
