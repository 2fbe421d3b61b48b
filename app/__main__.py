"""`python -m app` is the `b24emu` command."""

import sys

from app.cli import main

sys.exit(main())
