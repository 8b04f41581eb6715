"""Stand-in for ``ttadev.observability``."""
