"""`python -m restoration.bench`: the same as `filmrestore bench`."""

import sys

from restoration.bench import main

sys.exit(main())
