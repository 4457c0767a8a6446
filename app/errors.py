"""Readable error reporting: the core's one-line messages in a dialog, tracebacks only in the log."""

from __future__ import annotations

import errno
import logging
import sys
import traceback
from types import TracebackType

from PySide6.QtWidgets import QMessageBox, QWidget

from restoration.errors import RestorationError

log = logging.getLogger("filmrestore.app")


def one_line(exc: BaseException) -> str:
    """The message a restorer reads: the core's own line, an OS error's file and reason, else type and text."""
    if isinstance(exc, RestorationError):
        return str(exc)
    if isinstance(exc, OSError):
        reason = "no space left on the disk" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
        return f"{exc.filename}: {reason}" if exc.filename else reason
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def show_error(parent: QWidget | None, title: str, exc: BaseException | str) -> None:
    """A modal dialog with one readable line (and, for unexpected errors, where the details went)."""
    message = exc if isinstance(exc, str) else one_line(exc)
    if isinstance(exc, BaseException) and not isinstance(exc, (RestorationError, OSError)):
        log.error("%s", "".join(traceback.format_exception(exc)))
        message += "\n\nThis looks like a bug in FilmRestore; the details were written to the log."
    box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("errorDialog")
    box.exec()


def install_excepthook(parent_getter) -> None:
    """Unexpected exceptions in slots: log the traceback, show one line, keep the session running."""

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, exc, tb)
            return
        log.error("unhandled: %s", "".join(traceback.format_exception(kind, exc, tb)))
        try:
            show_error(parent_getter(), "FilmRestore", exc)
        except Exception:  # noqa: BLE001 - the hook must never raise
            sys.__excepthook__(kind, exc, tb)

    sys.excepthook = hook
