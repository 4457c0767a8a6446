"""FilmRestore desktop application: a thin PySide6 view over the `restoration` core (no processing here)."""
