"""The history: athletes, sessions, calibrations, trials and samples in SQLite.

The package itself stays light (sqlite3, numpy): the recorder, which scores sessions with the
core, is ``dorsimeter.store.recorder``; every command's start-up imports this package."""

from dorsimeter.paths import data_dir, db_path
from dorsimeter.store.db import Athlete, Samples, SessionInfo, Store, Trial, utc_iso

__all__ = ["Athlete", "Samples", "SessionInfo", "Store", "Trial", "data_dir", "db_path",
           "utc_iso"]
