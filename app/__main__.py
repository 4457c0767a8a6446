"""`python -m app [SOURCE]`: start the desktop application."""

from __future__ import annotations

import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow

    args = list(sys.argv[1:] if argv is None else argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(args[0] if args else None)
    window.show()
    return app.exec()


if __name__ == "__main__":
    raise SystemExit(main())
