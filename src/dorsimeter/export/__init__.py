"""Export of stored sessions: CSV files and a self-contained HTML report."""

from dorsimeter.export.csvfiles import SAMPLE_COLUMNS, TRIAL_COLUMNS, export_session_csv

__all__ = ["SAMPLE_COLUMNS", "TRIAL_COLUMNS", "export_session_csv"]
