"""The keys of each screen, for the help screen and the footers (one table, so they agree)."""

SCREEN_KEYS = {
    "Calibrate": [("enter", "strapped: start / done"), ("c", "start again"), ("esc", "back")],
    "Athlete": [("enter", "choose / create"), ("tab", "next field"), ("esc", "back")],
    "Sensor": [("enter", "connect (in the placement field: keep it)"), ("+", "add to my sensors"),
               ("-", "remove from my sensors"), ("f5", "scan again"),
               ("esc", "back")],
    "Protocol": [("enter", "start"), ("x", "stop protocol"), ("esc", "back")],
    "History": [("↑↓", "choose a session"), ("e", "export it"), ("esc", "back")],
    "Export": [("enter", "export"), ("f2", "CSV / HTML report"), ("esc", "back")],
}
