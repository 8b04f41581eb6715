"""``python -m tta_observability.mixin``: regenerate the rules, dashboards and stack assets."""

import sys

from .generate import main

sys.exit(main())
