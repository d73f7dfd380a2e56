"""``python -m firmware_bridge --pty``: the node on this host, frames into a pseudo-terminal."""

import sys

from firmware_bridge.host import main

sys.exit(main())
