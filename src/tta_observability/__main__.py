"""``python -m tta_observability``: the same command line as ``tta-observability``."""

from tta_observability.cli import main

raise SystemExit(main())
