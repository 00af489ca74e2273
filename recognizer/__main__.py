"""Allow ``python -m recognizer``."""
from __future__ import annotations

import sys

from recognizer.cli import main

if __name__ == "__main__":
    sys.exit(main())
