"""File formats: the raw CSV and readings CSV contracts."""
