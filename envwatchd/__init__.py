"""envwatchd: reverse every Python package path on a Linux machine."""

__version__ = "0.1.0"
