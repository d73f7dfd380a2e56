"""The monitor's other screens: help, calibration wizard, athlete, sensor, protocol, history,
export."""

from dorsimeter.tui.screens.athlete import AthleteScreen
from dorsimeter.tui.screens.calibrate import CalibrateScreen
from dorsimeter.tui.screens.connect import ConnectScreen
from dorsimeter.tui.screens.help import HelpScreen
from dorsimeter.tui.screens.history import ExportScreen, HistoryScreen
from dorsimeter.tui.screens.protocol import ProtocolScreen

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

__all__ = ["AthleteScreen", "CalibrateScreen", "ConnectScreen", "ExportScreen", "HelpScreen",
           "HistoryScreen", "ProtocolScreen", "SCREEN_KEYS"]
