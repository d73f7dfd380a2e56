"""Text from outside (a user, a file, the air) made inert for each place it is shown or written.

One module so that every sink uses the same rules: the terminal (control characters), the TUI
(textual/rich markup), spreadsheets (formula prefixes) and sensor names advertised over BLE.
HTML escaping stays with ``html.escape`` at the report.
"""

from __future__ import annotations

import re
import unicodedata

# C0 and C1 controls, DEL, and the Unicode bidi overrides/isolates that reorder what is shown.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# A spreadsheet reads a cell that starts with one of these as a formula (OWASP CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
MAX_DEVICE_NAME_CHARS = 32  # BLE complete local name fits 29 bytes of advertising data


def terminal_safe(text: object) -> str:
    """``text`` with control characters (escape sequences, bells, bidi overrides) made visible.

    Each one becomes ``\\xNN`` / ``\\uNNNN`` so nothing reaches the terminal as a command but
    the user still sees that something odd was there. Unpaired surrogates become ``\\udcNN``.
    """
    s = str(text)
    s = s.encode("utf-8", "backslashreplace").decode("utf-8")
    return _CONTROL_RE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), s)


def markup_safe(text: object) -> str:
    """``text`` safe to place inside textual/rich markup: terminal-safe, brackets escaped."""
    from rich.markup import escape  # rich is a runtime dependency; imported lazily for start-up

    return escape(terminal_safe(text))


def inert_cell(value: object) -> object:
    """A spreadsheet cell that cannot run as a formula; numbers and None pass through unchanged.

    Text starting with a formula prefix (``= + - @``, tab, CR, LF, or their full-width forms)
    gets a leading apostrophe, as OWASP recommends; the text itself is kept in full.
    """
    if value is None or isinstance(value, (bool, int, float)):
        return value
    s = str(value)
    if s.startswith(FORMULA_PREFIXES):
        return "'" + s
    return s


def device_name(raw: object, limit: int = MAX_DEVICE_NAME_CHARS) -> str:
    """A name a BLE device advertised, capped and with control and format characters removed."""
    s = "" if raw is None else str(raw)
    s = "".join(ch for ch in s if unicodedata.category(ch)[0] != "C")
    s = s.encode("utf-8", "ignore").decode("utf-8")
    return s[:limit].strip()
