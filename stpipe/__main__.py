"""``python -m stpipe`` — the same as the ``stpipe`` command."""

import sys

from stpipe.cli import main

sys.exit(main())
