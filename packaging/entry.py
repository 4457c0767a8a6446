"""Entry point of the application bundle (PyInstaller): `filmrestore` is the command line, `FilmRestore` (a link to
the same executable) the desktop application.

Order matters. The torch add-on folder goes on sys.path before anything imports torch, and before
freeze_support() so that a render's worker processes have it too. freeze_support() comes before any work: the
render engine starts its workers with the spawn method (restoration/render/executors.py), i.e. this executable
again, and freeze_support() makes such a process run its task and exit instead of starting a second application.
"""

import multiprocessing
import os
import sys

if __name__ == "__main__":
    from restoration.bundle import torch_addon_dir  # small: sys and pathlib only

    addon = torch_addon_dir()
    if addon is not None:  # a CUDA build of torch installed beside the bundle (packaging/gpu-addon.sh)
        sys.path.insert(0, str(addon))
    multiprocessing.freeze_support()
    if os.path.basename(sys.argv[0]) == "FilmRestore":  # the name it was started by: the link, or the .desktop
        from app.__main__ import main
    else:
        from restoration.cli import main
    sys.exit(main())
