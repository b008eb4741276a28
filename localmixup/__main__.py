"""``python -m localmixup`` is the ``localmixup`` command."""

import sys

from .cli import main

sys.exit(main())
