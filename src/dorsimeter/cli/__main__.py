import sys

from dorsimeter.cli import main

sys.exit(main())
