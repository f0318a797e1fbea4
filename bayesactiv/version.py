"""The package version, in a module of its own so that every room can read it without a cycle.

Examples
--------
>>> from bayesactiv.version import __version__
>>> __version__.count(".") >= 1
True
"""

__version__ = "0.1.0"
