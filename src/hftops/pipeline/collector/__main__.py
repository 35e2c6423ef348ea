"""`python -m hftops.pipeline.collector`: the market-data collector process."""

from hftops.lifecycle import exit_now
from hftops.pipeline.collector.app import main

exit_now(main())
