"""``python -m localmixup.paper``: the ``localmixup`` command (:func:`localmixup.paper.cli.main`)."""

import sys

from localmixup.paper.cli import main

if __name__ == "__main__":
    sys.exit(main())
