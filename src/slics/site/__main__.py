"""``python -m slics.site``: build the offline HTML site (see :mod:`slics.site.build`)."""

import sys

from ..utils.errors import run_main
from .build import main

sys.exit(run_main(main))
