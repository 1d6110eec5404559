"""``python -m protege``: the same command line as ``protege``."""

import sys

from protege.cli import main

sys.exit(main())
