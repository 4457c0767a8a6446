"""Dark, neutral-grey theme: grading-suite conventions, so colours on screen are judged against neutral grey."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

ACCENT = "#d89b3c"  # warm amber, the colour of a film leader; used sparingly
ACCENT_SOFT = "#8a6a38"
SHOT_MARK = "#5fa8d3"
IN_OUT = "#3f6f48"
ERROR = "#e06c5a"
TEXT = "#d6d6d6"
TEXT_DIM = "#8c8c8c"
BASE = "#1e1e1e"
WINDOW = "#2a2a2a"
PANEL = "#242424"
VIEWER_BG = "#141414"
OVERLAY_COLOURS = ("#ff3b30", "#34c759", "#0a84ff", "#ffd60a", "#bf5af2", "#64d2ff")

STYLESHEET = f"""
QMainWindow, QDialog {{ background: {WINDOW}; }}
QDockWidget {{ color: {TEXT}; font-weight: 600; }}
QDockWidget::title {{ background: #333333; padding: 4px 8px; border-bottom: 1px solid #1a1a1a; }}
QToolBar {{ background: #303030; border: none; border-bottom: 1px solid #1a1a1a; spacing: 4px; padding: 3px; }}
QToolBar QLabel {{ color: {TEXT_DIM}; padding: 0 2px 0 8px; }}
QToolButton {{ color: {TEXT}; padding: 3px 8px; border: 1px solid transparent; border-radius: 3px; }}
QToolButton:hover {{ background: #3c3c3c; border-color: #4a4a4a; }}
QToolButton:checked {{ background: {ACCENT_SOFT}; border-color: {ACCENT}; color: #ffffff; }}
QStatusBar {{ background: #303030; color: {TEXT}; border-top: 1px solid #1a1a1a; }}
QStatusBar QLabel {{ color: {TEXT}; padding: 0 6px; font-family: "DejaVu Sans Mono", monospace; }}
QListWidget, QTableWidget, QTreeWidget {{ background: {PANEL}; alternate-background-color: #282828;
    border: 1px solid #1a1a1a; }}
QListWidget::item:selected, QTableWidget::item:selected {{ background: #3d4b5c; }}
QHeaderView::section {{ background: #303030; color: {TEXT_DIM}; border: none; padding: 3px 6px; }}
QGroupBox {{ border: 1px solid #3a3a3a; border-radius: 4px; margin-top: 14px; padding-top: 6px; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 8px; padding: 0 4px; color: {TEXT_DIM}; }}
QSlider::groove:horizontal {{ height: 4px; background: #3a3a3a; border-radius: 2px; }}
QSlider::sub-page:horizontal {{ background: {ACCENT_SOFT}; border-radius: 2px; }}
QSlider::handle:horizontal {{ background: {ACCENT}; width: 12px; margin: -5px 0; border-radius: 6px; }}
QSlider::handle:horizontal:disabled {{ background: #555555; }}
QProgressBar {{ background: #1b1b1b; border: 1px solid #3a3a3a; border-radius: 3px; color: {TEXT};
    text-align: center; height: 14px; }}
QProgressBar::chunk {{ background: {ACCENT_SOFT}; }}
QFrame#stageStack {{ background: {PANEL}; border-bottom: 1px solid #1a1a1a; }}
QFrame#stageRow {{ background: {PANEL}; border-left: 3px solid transparent; }}
QFrame#stageRow:hover {{ background: #2e2e2e; }}
QFrame#stageRow[selected="true"] {{ background: #34404c; border-left: 3px solid {ACCENT}; }}
QLabel#stageNote {{ color: {TEXT_DIM}; font-style: italic; }}
QLabel#panelTitle {{ font-size: 14px; font-weight: 600; color: #ffffff; }}
QLabel#panelSummary {{ color: {TEXT_DIM}; }}
QLabel#banner {{ background: rgba(30, 30, 30, 210); color: {ERROR}; padding: 6px 10px; border-radius: 3px; }}
QLabel#note {{ background: rgba(30, 30, 30, 210); color: {TEXT}; padding: 6px 10px; border-radius: 3px; }}
QLabel#timecode {{ font-family: "DejaVu Sans Mono", monospace; font-size: 13px; color: #ffffff; }}
QLabel#frameInfo {{ font-family: "DejaVu Sans Mono", monospace; color: {TEXT_DIM}; }}
"""


def apply_dark_theme(app: QApplication) -> None:
    """Fusion style with a neutral dark palette and the workstation's stylesheet."""
    app.setStyle("Fusion")
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: WINDOW,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: BASE,
        QPalette.ColorRole.AlternateBase: "#262626",
        QPalette.ColorRole.ToolTipBase: "#1b1b1b",
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: "#353535",
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: "#3d6a99",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: ACCENT,
        QPalette.ColorRole.PlaceholderText: TEXT_DIM,
    }
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6a6a6a"))
    app.setPalette(palette)
    app.setStyleSheet(STYLESHEET)
