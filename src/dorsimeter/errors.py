"""Errors the user can cause; the CLI prints their message on one line (exit 2 or 1)."""


class DorsimeterError(Exception):
    """A problem the user can fix (bad file, bad option). Exit code 2."""

    exit_code = 2


class InputError(DorsimeterError):
    """Bad input data: names the file, line and field."""

    def __init__(self, path: str, line: int | None, field: str | None, problem: str,
                 kind: str | None = None) -> None:
        where = str(path)
        if kind is None:  # a CSV column, a JSON field, a TOML key
            kind = {".json": "field", ".toml": "key"}.get(str(path).lower()[-5:], "column")
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", {kind} '{field}'"
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.field = path, line, field


class CalibrationError(DorsimeterError):
    """The recording cannot define the mounting (no still stance, no knee drives...)."""


class DeviceError(DorsimeterError):
    """A sensor could not be reached or was lost for good. Exit code 1."""

    exit_code = 1
