"""``python -m soak``: see soak/cli.py."""

import sys

from soak.cli import main

sys.exit(main())
