"""``python -m vecstore``: the same command line as the ``vecstore`` script."""

import sys

from vecstore.cli import main

sys.exit(main())
