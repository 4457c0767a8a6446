"""The main window's actions, keyboard shortcuts, toolbar, menus and help: one place for every command."""

from __future__ import annotations


from PySide6.QtCore import QSize
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QComboBox, QLabel, QMenu, QMessageBox, QProgressBar, QSizePolicy, QToolButton, QWidget

from restoration.project import preset_names
from restoration.stages import stage_classes


class WindowActions:
    """Builds the QActions, toolbar and menus of MainWindow, whose slots it connects by name."""

    def _action(self, text: str, slot, shortcut: str | QKeySequence | None = None, tip: str = "",
                checkable: bool = False) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setToolTip(tip)
            action.setStatusTip(tip)
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        self.addAction(action)  # shortcuts work wherever focus is (text fields keep their own keys)
        return action

    def _build_actions(self) -> None:
        a = self._action
        self.act_open = a("Open source…", self.open_source_dialog, QKeySequence.StandardKey.Open,
                          "Open a video file or an image-sequence folder")
        self.act_open_folder = a("Open image-sequence folder…", self.open_sequence_folder_dialog, "Ctrl+Shift+F",
                                 "Open a folder of numbered DPX/TIFF/PNG/JPEG frames as one clip")
        self.act_open_project = a("Open project…", self.open_project_dialog, "Ctrl+Shift+O", "Open a project file")
        self.act_save = a("Save project", self.save_project, QKeySequence.StandardKey.Save, "Save the project")
        self.act_save_as = a("Save project as…", self.save_project_as, "Ctrl+Shift+S")
        self.act_quit = a("Quit", self.close, QKeySequence.StandardKey.Quit)
        self.act_side = a("Side by side", lambda: self.set_view("side"), "1", "Original and result next to each other",
                          checkable=True)
        self.act_split = a("Split wipe", lambda: self.set_view("split"), "2", "One picture, drag the divider to wipe",
                           checkable=True)
        self.act_flip = a("A/B flip", lambda: self.set_view("flip"), "A",
                          "One picture; press again to flip between original (A) and result (B) in the same place",
                          checkable=True)
        self.act_difference = a("Difference", lambda: self.set_view("difference"), "D",
                                "Only what changed: |result − original| amplified, with its gain shown",
                                checkable=True)
        group = QActionGroup(self)
        for action in (self.act_side, self.act_split, self.act_flip, self.act_difference):
            group.addAction(action)
        self.act_split.setChecked(True)
        self.act_fit = a("Fit", self.viewer.fit, "F", "Fit the picture to the viewer")
        self.act_100 = a("1:1", lambda: self.viewer.set_zoom(1.0), "Ctrl+1", "One picture pixel per screen pixel")
        self.act_200 = a("200 %", lambda: self.viewer.set_zoom(2.0), "Ctrl+2", "Two screen pixels per picture pixel")
        self.act_add_job = a("Add current project to render queue…", self._add_job, "Ctrl+R")
        self.act_start_queue = a("Start render queue", self.queue.start, "Ctrl+Shift+R")
        for key in ("J", "K", "L"):
            a(f"Shuttle {key}", lambda _=False, k=key.lower(): self.timeline.shuttle(k), key)
        a("Previous frame", lambda: self.timeline.step(-1), "Left")
        a("Next frame", lambda: self.timeline.step(1), "Right")
        a("First frame", self.timeline.go_first, "Home")
        a("Last frame", self.timeline.go_last, "End")
        a("Set in point", self.timeline.mark_in, "I")
        a("Set out point", self.timeline.mark_out, "O")

    def _build_toolbar(self) -> None:
        bar = self.addToolBar("Main")
        bar.setObjectName("mainToolbar")
        bar.setMovable(False)
        bar.setIconSize(QSize(16, 16))
        bar.addAction(self.act_open)
        bar.addAction(self.act_save)
        bar.addSeparator()
        bar.addWidget(QLabel("Compare"))
        self.compare_box = QComboBox()
        self.compare_box.addItem("Original ⟷ result", None)
        for cls in stage_classes():
            self.compare_box.addItem(f"Before ⟷ after {cls.title}", cls.name)
        self.compare_box.setToolTip("What the two sides show: the untouched source against the full result, or the "
                                    "picture just before and just after one stage")
        self.compare_box.currentIndexChanged.connect(self._compare_changed)
        bar.addWidget(self.compare_box)
        bar.addSeparator()
        bar.addAction(self.act_side)
        bar.addAction(self.act_split)
        bar.addAction(self.act_flip)
        bar.addAction(self.act_difference)
        bar.addSeparator()
        bar.addAction(self.act_fit)
        bar.addAction(self.act_100)
        bar.addAction(self.act_200)
        bar.addSeparator()
        self.overlay_menu = QMenu("Overlays", self)
        self.overlay_button = QToolButton()
        self.overlay_button.setText("Overlays")
        self.overlay_button.setToolTip("Draw stage side data (defect masks and maps) over the picture")
        self.overlay_button.setMenu(self.overlay_menu)
        self.overlay_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        bar.addWidget(self.overlay_button)
        self._rebuild_overlay_menu([])
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        bar.addWidget(spacer)
        self.busy_label = QLabel("")
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setFixedWidth(110)
        self.busy_bar.setTextVisible(False)
        self.busy_bar.setVisible(False)
        bar.addWidget(self.busy_label)
        bar.addWidget(self.busy_bar)

    def _build_menus(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        file_menu.addAction(self.act_open)
        file_menu.addAction(self.act_open_folder)
        file_menu.addAction(self.act_open_project)
        self.recent_menu = file_menu.addMenu("Open recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file_menu.addSeparator()
        file_menu.addAction(self.act_save)
        file_menu.addAction(self.act_save_as)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        presets = menu.addMenu("&Presets")
        for name in preset_names():
            action = presets.addAction(name.replace("-", " ").capitalize())
            action.setToolTip(f"Apply the {name} preset's stages and export settings (the source stays)")
            action.triggered.connect(lambda _=False, n=name: self.apply_preset(n))
        view = menu.addMenu("&View")
        for action in (self.act_side, self.act_split, self.act_flip, self.act_difference, None, self.act_fit,
                       self.act_100, self.act_200):
            view.addSeparator() if action is None else view.addAction(action)
        view.addSeparator()
        view.addMenu(self.overlay_menu)
        view.addSeparator()
        for dock in (self.stages_dock, self.source_dock, self.monitor_dock, self.side_dock, self.scopes_dock,
                     self.colour_dock, self.queue_dock):
            view.addAction(dock.toggleViewAction())
        render = menu.addMenu("&Render")
        render.addAction(self.act_add_job)
        render.addAction(self.act_start_queue)
        help_menu = menu.addMenu("&Help")
        help_menu.addAction("Keyboard shortcuts", self._show_shortcuts)
        help_menu.addAction("About FilmRestore", self._show_about)

    def _build_status(self) -> None:
        self.pixel_label = QLabel("")
        self.zoom_label = QLabel("")
        self.statusBar().addPermanentWidget(self.pixel_label)
        self.statusBar().addPermanentWidget(self.zoom_label)

    def _show_shortcuts(self) -> None:
        QMessageBox.information(self, "Keyboard shortcuts", "\n".join((
            "J / K / L — play backwards / stop / play (press again for 2×, 4×, 8×)",
            "Left / Right — previous / next frame", "Home / End — first / last frame",
            "I / O — set in / out point", "1 / 2 — side by side / split wipe",
            "A — A/B flip: original and result in the same place (press again to flip)",
            "D — difference: only what changed, amplified (its gain is shown on the picture)",
            "Arrow keys on a focused slider — one fine step (the spin box's); Page Up/Down — ten",
            "F — fit · Ctrl+1 — 1:1 · Ctrl+2 — 200 %  (mouse wheel zooms, drag pans, double-click fits)",
            "Shift+drag on the picture — keep that region original on this frame (false dust repairs)",
            "Ctrl+O — open source · Ctrl+S — save project · Ctrl+R — add to render queue")))

    def _show_about(self) -> None:
        from restoration import __version__
        from restoration.bundle import version_text

        # the torch build and device, as `filmrestore --version` says them: CPU bundle, GPU add-on or a CUDA venv
        QMessageBox.about(self, "About FilmRestore", f"FilmRestore {__version__}\nA restoration workstation for "
                                                     "scanned film. The source is never modified.\n\n"
                                                     f"{version_text()}")
