"""`python -m miniserve` / the `miniserve` console script."""

from __future__ import annotations

import sys

from miniserve.cli import main

if __name__ == "__main__":
    sys.exit(main())
