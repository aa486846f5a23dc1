"""``python -m ibsim`` is the ``ibsim`` command."""

import sys

from ibsim.cli import main

sys.exit(main())
