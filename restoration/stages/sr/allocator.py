"""The allocator setting now lives in `restoration.allocator` (the dust stage uses it too): this name is that
module, so its importers and their monkeypatches see one module."""

import sys

from ... import allocator as _shared

sys.modules[__name__] = _shared
