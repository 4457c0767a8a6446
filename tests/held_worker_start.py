"""The filmrestore command line with every local render worker held at its very start, as a worker still importing
torch on a loaded machine is: a seam for the cancel tests (run as a script, so that workers find `held_start`).

Each held worker writes its pid as a file into the folder $HELD_WORKERS, then sleeps.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from restoration.render import executors


def held_start(*_args: object) -> None:
    (Path(os.environ["HELD_WORKERS"]) / str(os.getpid())).touch()
    time.sleep(3600)


if __name__ == "__main__":
    from restoration.cli import main

    executors._start_worker = held_start
    raise SystemExit(main())
