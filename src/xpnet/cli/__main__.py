"""``python -m xpnet.cli``, the same as ``python -m xpnet`` and the ``xpnet`` command."""

import sys

from . import main

sys.exit(main())
