"""The monitor's other screens: help, calibration wizard, athlete, sensor, protocol, history,
export."""

from dorsimeter.tui.screens.athlete import AthleteScreen
from dorsimeter.tui.screens.calibrate import CalibrateScreen
from dorsimeter.tui.screens.connect import ConnectScreen
from dorsimeter.tui.screens.help import HelpScreen
from dorsimeter.tui.screens.history import ExportScreen, HistoryScreen
from dorsimeter.tui.screens.keys import SCREEN_KEYS
from dorsimeter.tui.screens.protocol import ProtocolScreen

__all__ = ["AthleteScreen", "CalibrateScreen", "ConnectScreen", "ExportScreen", "HelpScreen",
           "HistoryScreen", "ProtocolScreen", "SCREEN_KEYS"]
