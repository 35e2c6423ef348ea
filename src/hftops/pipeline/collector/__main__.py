"""`python -m hftops.pipeline.collector`: the market-data collector process."""

import sys

from hftops.pipeline.collector.app import main

sys.exit(main())
