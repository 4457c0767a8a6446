"""One module per restoration stage; importing this package registers all of them in the fixed order."""

from . import color, deflicker, denoise, dust, sr, stabilize  # noqa: F401
