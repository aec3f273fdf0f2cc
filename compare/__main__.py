"""python -m compare {run,report,faults,scenarios} -- see README."""

from __future__ import annotations

import sys

from compare.cli import main

if __name__ == "__main__":
    sys.exit(main())
