"""``python -m localmixup`` and the ``localmixup`` command: the paper's command line (extra ``paper``)."""

import sys

from localmixup.extras import MissingExtra


def main() -> int:
    """Run :func:`localmixup.paper.cli.main`; without the ``paper`` extra, print one line naming it
    (``pip install 'localmixup[paper]'``) and return 1."""
    try:
        from localmixup.paper.cli import main as paper_main
    except MissingExtra as error:
        print(f"localmixup: {error}", file=sys.stderr)
        return 1
    return paper_main()


if __name__ == "__main__":
    sys.exit(main())
