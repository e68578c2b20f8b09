"""`python -m digest.cli`: the same command as the `digest` console script."""

import sys

from digest.cli import main

sys.exit(main())
