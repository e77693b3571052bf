"""``python -m slics.site``: build the offline HTML site (see :mod:`slics.site.build`)."""

import sys

from .build import main

sys.exit(main())
