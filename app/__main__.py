"""`python -m b24emu` is the `b24emu` command."""

import sys

from b24emu.cli import main

sys.exit(main())
