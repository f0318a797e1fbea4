"""Draw every test figure off screen: the package itself leaves the matplotlib backend alone."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
