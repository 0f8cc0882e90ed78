"""``python -m sentiment <command>``: the same as the ``sentiment`` command."""

import sys

from sentiment.commands import main

sys.exit(main())
