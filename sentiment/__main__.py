"""``python -m sentiment <command>``: the same as the ``sentiment`` command."""

import sys

from sentiment.cli.main import main

sys.exit(main())
