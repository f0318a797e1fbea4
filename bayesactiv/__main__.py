"""``python -m bayesactiv``: the command line (also ``torchrun -m bayesactiv record ...``)."""

import sys

from bayesactiv.cli import main

sys.exit(main())
