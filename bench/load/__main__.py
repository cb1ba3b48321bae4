from __future__ import annotations

import sys

from bench.load.cli import main

sys.exit(main())
