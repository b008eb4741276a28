"""``python -m localmixup`` is the ``localmixup`` command."""

import sys

from localmixup.paper.cli import main

sys.exit(main())
