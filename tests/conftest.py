"""Shared fixtures: simulated sessions with ground truth."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from dorsimeter.sim import Mount, SensorErrors, ShankSim
from dorsimeter.types import ImuBatch


def simulate(seconds: float, rate_hz: float = 100.0, side: str = "left", seed: int = 0,
             clip_rotation_deg=(0.0, 0.0, 0.0), errors: SensorErrors | None = None) -> ImuBatch:
    """One continuous simulated wall-test stream, as a single batch with truth."""
    sim = ShankSim(rate_hz=rate_hz, side=side, seed=seed,
                   mount=Mount(clip_rotation_deg=tuple(clip_rotation_deg)),
                   errors=errors if errors is not None else SensorErrors())
    return sim.generate(int(round(seconds * rate_hz)))


# --- every process and tmux server the suite starts is ended, even on interruption -----------

TMUX = shutil.which("tmux")
_TMUX_SOCKETS: set[str] = set()
#: one id for the whole run, pytest-xdist's workers included (they inherit it from the process
#: that started them): every tmux socket of the run carries it, so the controller's backstop
#: finds the servers of a worker that was killed before it could end them itself (the name is
#: outside DORSIMETER_*, which the CLI reads as settings)
RUN_ID = os.environ.setdefault("TEST_RUN_DORSIMETER", str(os.getpid()))
_SOCKET_PREFIX = f"dorsimeter-test-{RUN_ID}-"


def tmux_socket(tag: str) -> str:
    """A private tmux socket name for one test, remembered so the session's end (or an
    interrupted run's exit) kills its server if the test's own ``finally`` did not."""
    name = f"{_SOCKET_PREFIX}{tag}-{os.getpid()}"
    _TMUX_SOCKETS.add(name)
    return name


def _tmux_dir() -> Path:
    return Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}"


def end_tmux_server(socket: str) -> None:
    """Kill the server on ``socket`` and the process group of every pane it ran (a pane's
    program may ignore the hang-up tmux sends, or have children of its own)."""
    if TMUX is None:
        return
    try:
        panes = subprocess.run([TMUX, "-L", socket, "list-panes", "-a", "-F", "#{pane_pid}"],
                               capture_output=True, text=True, timeout=10).stdout.split()
        subprocess.run([TMUX, "-L", socket, "kill-server"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        panes = []
    for pid in (int(p) for p in panes if p.isdigit()):
        _kill_group(pid)
    (_tmux_dir() / socket).unlink(missing_ok=True)  # a killed server can leave its socket file
    _TMUX_SOCKETS.discard(socket)


def _kill_group(pid: int) -> None:
    """SIGTERM the process group led by ``pid``, SIGKILL whatever is left after 2 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.05)


def _descendants(root: int) -> list[int]:
    """Every live process below ``root`` (from /proc; Linux), deepest last."""
    children: dict[int, list[int]] = {}
    for proc_stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = proc_stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(proc_stat.parent.name))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _end_everything_started() -> None:
    """Backstop: the tmux servers on this process's sockets (in pytest-xdist's controller:
    on every socket of the run), then every child process still running (a subprocess a test
    leaked, or one an interrupted test had no time to end)."""
    for socket in list(_TMUX_SOCKETS):
        end_tmux_server(socket)
    if _IS_XDIST_CONTROLLER:
        for path in _tmux_dir().glob(f"{_SOCKET_PREFIX}*"):
            end_tmux_server(path.name)
    if not Path("/proc").is_dir():
        return
    _end_processes(_descendants(os.getpid()))


def _end_processes(pids: list[int], grace_s: float = 2.0) -> None:
    """SIGTERM ``pids``, then SIGKILL the ones still alive after ``grace_s``."""
    left = list(pids)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in left:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + grace_s
        while left and time.monotonic() < deadline:
            left = [p for p in left if _alive(p)]
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _sigterm_interrupts(signum, frame):
    """A CI cancel sends SIGTERM: unwind like Ctrl-C, so ``finally`` blocks, fixture teardown
    and the session-finish backstop still run (Python's default would exit without them)."""
    raise KeyboardInterrupt(f"signal {signum}")


def _arm_sigterm() -> None:
    """(Re)install the SIGTERM handler: an asyncio loop closing resets it to the default."""
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _sigterm_interrupts)


#: this process runs pytest-xdist's workers (it runs no test itself); set by pytest_configure
_IS_XDIST_CONTROLLER = False


def pytest_configure(config):
    global _IS_XDIST_CONTROLLER
    _IS_XDIST_CONTROLLER = (not hasattr(config, "workerinput")
                            and getattr(config.option, "numprocesses", None) not in (None, 0))
    _arm_sigterm()
    # a shell starting the run in the background (`cmd &`, nohup) ignores SIGINT, and children
    # inherit an ignored signal across exec: then `dorsimeter record` could not be stopped by
    # Ctrl-C in tests/reliability/test_crash.py. Handled here, so children get the default.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    atexit.register(_end_everything_started)


def pytest_runtest_setup(item):
    _arm_sigterm()


def _dev_null_is_a_device() -> bool:
    try:
        return stat.S_ISCHR(os.stat(os.devnull).st_mode)
    except OSError:
        return False


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Fail the test during which /dev/null became a regular file (an atomic write or a rename
    onto it, run as root): it breaks tmux, subprocess.DEVNULL and every test after it."""
    before = _dev_null_is_a_device()
    result = yield
    if before and not _dev_null_is_a_device():
        pytest.fail(f"{os.devnull} was replaced by a regular file while this test ran (by it, or "
                    "by another process on this machine); restore it with "
                    "`rm /dev/null && mknod -m 666 /dev/null c 1 3`", pytrace=False)
    return result


def pytest_runtest_teardown(item, nextitem):
    _arm_sigterm()


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session, exitstatus):
    """The backstop runs after every other session-finish step (the session fixtures' own
    teardown included).

    An interrupted xdist run (Ctrl-C, SIGTERM): xdist's own step asks its workers to exit and
    SIGKILLs the ones still busy after 10 s, which would leave their subprocesses and tmux
    servers running. So before it, SIGTERM the workers still there after 3 s (Ctrl-C reached
    them too: they may be unwinding already), which unwind like Ctrl-C (each one's fixtures and
    backstop end what it started), then end whatever a worker left behind (remembered before
    it went: its orphans are no longer below this process; by start time too, as a pid can be
    reused in the meantime)."""
    if _IS_XDIST_CONTROLLER and exitstatus == pytest.ExitCode.INTERRUPTED:
        everything = {p: _stat(p) for p in _descendants(os.getpid())}
        workers = [p for p, st in everything.items() if st and int(st[1]) == os.getpid()]
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.05)
        _end_processes([p for p in workers if _alive(p)], grace_s=8.0)  # teardown: 2-4 s
        _end_processes([p for p, st in everything.items()
                        if st and _alive(p) and (_stat(p) or [])[19:20] == st[19:20]])
    try:
        return (yield)
    finally:
        _end_everything_started()


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name: [1] parent pid, [19] start time."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


# --- the slow tests (`make check` skips them; `make test` runs everything) ----------------------
#: tests that took >= 10 s each in `pytest --durations` per directory on the shared, loaded
#: 2-core machine (22:05-22:50 UTC, 1 Dec 2026), by file; kept here rather than as decorators so
#: the list is one reviewable place while many branches edit the test files themselves
SLOW: dict[str, set[str]] = {
    "tests/tui/test_bilateral.py": {
        "test_both_legs_follow_their_truth_and_the_asymmetry_updates_live",
        "test_a_guided_exercise_follows_the_chosen_leg",
        "test_one_legs_raw_csv_failing_stops_only_that_recording",
        "test_a_heel_lift_alerts_only_its_own_leg",
        "test_one_sensor_dropping_does_not_stop_the_other",
    },
    "tests/tui/test_snapshots.py": {
        "test_monitor_layout", "test_two_sensor_layout", "test_monitor_layout_without_alert_120x40",
    },
    "tests/tui/test_app.py": {"test_monitor_follows_the_simulated_truth"},
    "tests/tui/test_ble_both.py": {
        "test_one_ble_link_dropping_leaves_the_other_leg_streaming",
        "test_record_with_a_ble_sensor_on_each_shin",
    },
    "tests/tui/test_ble_connect.py": {"test_scan_allow_connect_and_link_figures"},
    "tests/tui/test_monitor.py": {"test_heel_lift_banner_bell_and_invalid_rep"},
    "tests/sources/test_serial.py": {"test_cli_record_from_the_firmware_on_a_pty"},
    "tests/sources/test_ble.py": {
        "test_record_command_over_ble_writes_the_raw_csv_in_si_units",
        "test_scan_command_lists_supported_sensors_with_rssi_and_battery",
        "test_link_drop_mid_trial_reconnects_within_2s_marks_the_gap_and_keeps_the_trial",
        "test_node_scan_connect_and_stream_200hz_for_10s_with_zero_loss",
    },
    "tests/reliability/test_crash.py": {
        "test_interrupt_or_hangup_flushes_closes_and_ends_the_session",
        "test_closing_the_terminal_of_the_monitor_ends_its_session",
        "test_sigkill_loses_nothing_flushed_and_the_next_start_offers_recovery",
    },
    "tests/reliability/test_security.py": {
        "test_recordings_exports_and_history_are_owner_only_and_nothing_leaves_the_machine",
        "test_cli_refuses_a_sensor_not_added_in_one_line",
    },
    "tests/reliability/test_decoder_faults.py": {
        "test_device_clock_100ppm_fast_for_an_hour",
        "test_duplicated_and_reordered_notifications_deliver_each_sample_once_in_order",
        "test_bursty_loss_of_10_percent_is_counted_exactly_and_readings_continue",
    },
    "tests/reliability/test_fuzz.py": {"test_node_frame_decoder_resyncs_and_counts"},
    "tests/reliability/test_fuzz_files.py": {"test_calibration_file_loaders_on_anything"},
    "tests/reliability/test_links.py": {
        "test_power_cycle_over_ble_while_the_link_is_down",
        "test_power_cycle_over_usb_restarts_sequence_and_clock_and_readings_go_on",
    },
    "tests/reliability/test_disk.py": {
        "test_record_on_a_full_disk_is_one_line_exit_1_and_keeps_every_whole_line",
    },
    "tests/cli/test_monitor_both.py": {
        "test_monitor_with_two_sensors_stores_both_legs_like_record",
    },
    "tests/cli/test_commands.py": {
        "test_record_with_the_athletes_lengths_says_whether_the_knee_reaches_the_wall",
        "test_two_sensors_live_one_per_shin_give_both_sides_and_their_asymmetry",
        "test_calibrate_and_analyze_reproduce_the_live_maxima",
        "test_bad_input_from_the_installed_command_has_no_traceback",
        "test_sim_scripts_are_named_on_the_sensor_spec",
    },
    "tests/cli/test_settings.py": {"test_config_file_then_environment_then_options"},
    "tests/cli/test_sensor_cal.py": {"test_live_commands_apply_the_sensors_box_calibration"},
    "tests/cli/test_history_export.py": {
        "test_the_real_monitor_stores_its_session_like_record",
        "test_a_moved_raw_recording_leaves_the_raw_columns_empty_with_a_note",
        "test_a_two_sensor_session_exports_each_legs_raw_values",
    },
    "tests/store/test_concurrency.py": {
        "test_a_killed_record_leaves_a_visible_unfinished_session_with_its_samples",
    },
    "tests/pipeline/test_accuracy.py": {
        "test_without_a_box_calibration_the_drives_take_out_the_accelerometer_offset",
    },
    "tests/detect/test_heel.py": {
        "test_shank_imu_alone_with_a_realistic_sensor_and_its_calibration",
        "test_alert_event_comes_soon_after_the_lift_and_names_the_source",
    },
    "tests/detect/test_reps.py": {
        "test_knee_drifting_toward_the_midline_raises_an_alert_on_those_drives_only",
        "test_single_leg_squat_peak_valgus_per_side",
        "test_rep_counts_are_exact_and_held_angles_within_half_a_degree",
    },
}


def pytest_collection_modifyitems(config, items):
    """Mark the tests in ``SLOW``; a listed name that no longer exists is reported, so the
    list cannot rot silently when a test is renamed."""
    modules = {}
    for item in items:
        rel = item.path.relative_to(config.rootpath).as_posix()
        if getattr(item, "originalname", item.name) in SLOW.get(rel, ()):
            item.add_marker(pytest.mark.slow)
        if rel in SLOW and getattr(item, "module", None) is not None:
            modules[rel] = item.module
    for rel, module in modules.items():
        if gone := sorted(n for n in SLOW[rel] if not hasattr(module, n)):
            config.issue_config_time_warning(
                pytest.PytestWarning(f"tests/conftest.py SLOW names tests {rel} no longer has: "
                                     f"{gone}"), stacklevel=2)


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path_factory, monkeypatch):
    """Every test gets its own data directory: nothing lands in the real user's history."""
    monkeypatch.setenv("DORSIMETER_HOME", str(tmp_path_factory.mktemp("dorsimeter-home")))


#: test folders whose simulator runs see its real defaults (every shin effect on)
REALISTIC_SHIN_DIRS = ("sim", "bench")


@pytest.fixture(autouse=True, scope="module")
def _ideal_rig_by_default(request):
    """Tests outside tests/sim and tests/bench were written for the ideal rig (a still athlete,
    a hinge ankle, a rigid clip, a low-error sensor): their simulators get no shin effects
    unless a test passes ``effects=`` itself. Set in the environment, so subprocesses follow;
    module-scoped, so module fixtures that simulate see it too."""
    from dorsimeter.sim.shin import EFFECTS_ENV

    parts = request.node.path.relative_to(request.config.rootpath).parts
    with pytest.MonkeyPatch.context() as mp:
        if not (len(parts) > 1 and parts[0] == "tests" and parts[1] in REALISTIC_SHIN_DIRS):
            mp.setenv(EFFECTS_ENV, "none")
        yield


@pytest.fixture
def wall_session() -> ImuBatch:
    return simulate(60.0)


def truth_at(batch: ImuBatch, t_s: np.ndarray, key: str = "tibia_angle_deg") -> np.ndarray:
    idx = np.searchsorted(batch.t_s, t_s)
    assert np.allclose(batch.t_s[idx], t_s)
    return batch.truth[key][idx]
