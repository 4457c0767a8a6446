"""FilmRestore core: media I/O, the stage pipeline and masters export. Never imports Qt."""

__version__ = "0.1.0"
