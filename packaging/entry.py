"""Entry point of the application bundle (PyInstaller): `filmrestore` is the command line, `FilmRestore` (a link to
the same executable) the desktop application.

Order matters: freeze_support() first, so that a render's spawned worker processes (restoration/render/executors.py
starts them with the spawn method, i.e. this executable again) run their task instead of a second application;
then the torch add-on folder, before anything imports torch.
"""

import multiprocessing
import os
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    from restoration.bundle import torch_addon_dir

    addon = torch_addon_dir()
    if addon is not None:  # a CUDA build of torch installed beside the bundle (packaging/gpu-addon.sh)
        sys.path.insert(0, str(addon))
    if os.path.basename(sys.argv[0]) == "FilmRestore":  # the name it was started by: the link, or the .desktop
        from app.__main__ import main
    else:
        from restoration.cli import main
    sys.exit(main())
