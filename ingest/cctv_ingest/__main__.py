"""Allow ``python -m cctv_ingest``."""

import sys

from cctv_ingest.cli import main

sys.exit(main())
