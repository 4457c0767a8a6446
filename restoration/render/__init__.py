"""The render engine: a plan of units (each stage's frames and shot analyses, computed once), executors that run
them in this process, in local worker processes or on Ray, and a work folder that makes every render resumable."""

from .engine import RenderResult, chain_steps, render_project
from .work import work_folder_for

__all__ = ["RenderResult", "chain_steps", "render_project", "work_folder_for"]
