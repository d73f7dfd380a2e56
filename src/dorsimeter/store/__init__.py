"""The history: athletes, sessions, calibrations, trials and samples in SQLite."""

from dorsimeter.paths import data_dir, db_path
from dorsimeter.store.db import Athlete, Samples, SessionInfo, Store, Trial, utc_iso
from dorsimeter.store.recorder import SessionRecorder

__all__ = ["Athlete", "Samples", "SessionInfo", "SessionRecorder", "Store", "Trial", "data_dir",
           "db_path", "utc_iso"]
