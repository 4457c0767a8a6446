"""Main window. For now a placeholder that shows the source's probe and the stage stack; the full
preview-driven workstation is issue 9."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QListWidget, QMainWindow, QSplitter, QWidget, QVBoxLayout

from restoration.errors import RestorationError
from restoration.stage import stage_classes


class MainWindow(QMainWindow):
    """Placeholder window: stage stack on the left, source description on the right."""

    def __init__(self, source: str | None = None) -> None:
        super().__init__()
        self.setWindowTitle("FilmRestore")
        stages = QListWidget()
        for cls in stage_classes():
            stages.addItem(f"{cls.title}{'' if cls.implemented else '  (not implemented yet)'}")
        self.info = QLabel("Open a source with: filmrestore gui SOURCE\n\nThe full workstation is being built.")
        self.info.setWordWrap(True)
        right = QWidget()
        layout = QVBoxLayout(right)
        layout.addWidget(self.info)
        splitter = QSplitter()
        splitter.addWidget(stages)
        splitter.addWidget(right)
        self.setCentralWidget(splitter)
        self.resize(960, 600)
        if source:
            self.open_source(source)

    def open_source(self, source: str) -> None:
        from restoration.io import probe

        try:
            info = probe(source)
        except RestorationError as exc:
            self.info.setText(f"Cannot open: {exc}")
            return
        lines = [f"{key}: {value}" for key, value in info.to_dict().items() if key != "files"]
        self.info.setText("\n".join(lines))
