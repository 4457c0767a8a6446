"""Where units run: in this process, in local worker processes (one core each), or as Ray tasks.

Each executor takes a batch of independent units and yields their results as they finish. A unit whose worker
crashes or is killed is retried up to `RETRIES` times; then the render stops with one line naming the unit.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import socket
import sys
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from ..bundle import FROZEN
from ..errors import ParamError, RestorationError
from .plan import Unit
from .tasks import RenderJob, UnitResult, one_core_for_now, pin_one_core, restore_cores, run_unit

RETRIES = 3
CONNECT_SECONDS = 5


class RenderFailed(RestorationError):
    """A unit failed on every try; the work folder stays for a resume."""


def describe(unit: Unit, job: RenderJob) -> str:
    name = job.plan.steps[unit.step - 1].name if unit.step else "source"
    what = "analysis of shot" if unit.kind == "analysis" else "frames"
    return f"{name} {what} {unit.start}-{unit.stop - 1}"


class InProcess:
    """Runs units one after another in this process (`--workers 1`), on one core's worth of threads like a worker."""

    workers = 1

    def __init__(self, job: RenderJob):
        self.job = job
        self._saved: tuple[set[int] | None, tuple[int, int]] | None = None

    def run(self, units: Iterable[Unit]) -> Iterator[UnitResult]:
        if self._saved is None:
            self._saved = one_core_for_now()
        for unit in units:
            yield run_unit(self.job, unit)

    def close(self) -> None:
        if self._saved is not None:
            restore_cores(self._saved)
            self._saved = None

    abort = close


_worker_job: RenderJob | None = None


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def _start_worker(job_file: str, slots: "multiprocessing.Queue[int]") -> None:
    global _worker_job
    # Ctrl-C reaches the whole process group: the render process stops its workers itself, so a worker says nothing
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    pin_one_core(slots.get())
    _worker_job = pickle.loads(Path(job_file).read_bytes())


@contextmanager
def held_cancels() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP inside the block and deliver them right after it (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {sig: signal.signal(sig, lambda number, frame: held.append(number)) for sig in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in held[:1]:
            os.kill(os.getpid(), sig)


def _die_with_parent() -> None:
    """A worker whose render process is killed outright (kill -9) is killed too, instead of running on."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before prctl took effect
            os._exit(1)


def _ready() -> int:
    return os.getpid()


def _run_in_worker(unit: Unit) -> UnitResult:
    assert _worker_job is not None
    return run_unit(_worker_job, unit)


class LocalProcesses:
    """Runs units in `workers` local processes, each pinned to one core (`--workers N`)."""

    def __init__(self, job: RenderJob, workers: int):
        self.job = job
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def _start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = multiprocessing.get_context("spawn")  # no forked torch/OpenCV thread state
            slots = context.Queue()
            for slot in range(self.workers):
                slots.put(slot)
            # The job waits in the work folder: a worker spawned with it in its arguments would hold the spawn (and
            # a cancel held over it) until that worker had imported torch to read them.
            self._pool = pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_start_worker,
                                                    initargs=(str(self.job.work.save_job(self.job)), slots))
            # A cancel in the middle of a spawn would leave a process the pool does not know, half-started and
            # talking: hold Ctrl-C/SIGTERM/SIGHUP while each is spawned (an instant), not while it starts up, so that
            # a cancel during the workers' imports kills them at once (abort).
            with held_cancels():
                for _ in range(self.workers):
                    pool.submit(_ready)
        return self._pool

    def run(self, units: Iterable[Unit]) -> Iterator[UnitResult]:
        pending = list(units)
        tries = {u: 0 for u in pending}
        running: dict[Future, Unit] = {}
        while pending or running:
            try:
                pool = self._start()
            except BrokenProcessPool:
                raise RenderFailed("--workers", f"the {self.workers} worker processes could not be started") from None
            try:
                while pending and len(running) < 2 * self.workers:
                    unit = pending.pop(0)
                    running[pool.submit(_run_in_worker, unit)] = unit
            except BrokenProcessPool:
                self._restart()
                continue
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                unit = running.pop(future)
                try:
                    yield future.result()
                except RestorationError:
                    raise
                except (BrokenProcessPool, OSError, MemoryError) as exc:
                    tries[unit] += 1
                    if tries[unit] >= RETRIES:
                        raise RenderFailed(describe(unit, self.job),
                                           f"failed {RETRIES} times ({_cause(exc)}); the work folder is kept: "
                                           "run the same command again to resume") from None
                    pending.insert(0, unit)
                    for other in list(running):  # a broken pool loses every unit in flight
                        pending.insert(0, running.pop(other))
                    self._restart()
                    break

    def _restart(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def abort(self) -> None:
        """Stop at once (cancel, kill, error): the workers' units in flight are lost, finished ones are kept."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        for process in list(getattr(pool, "_processes", {}).values()):  # no public way to stop a busy worker
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)


def _cause(exc: BaseException) -> str:
    if isinstance(exc, BrokenProcessPool):
        return "its worker process died"
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class RayTasks:
    """Runs units as Ray tasks on a cluster (`--ray ADDRESS`) or a local Ray runtime (`--ray local`)."""

    def __init__(self, job: RenderJob, address: str, workers: int):
        ray = check_ray(address)
        self.ray = ray
        self.job = job
        self.workers = workers
        try:
            if not ray.is_initialized():
                if address == "local":
                    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
                             configure_logging=False, _node_ip_address="127.0.0.1")
                else:
                    ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
        except Exception as exc:  # ray raises ConnectionError, RuntimeError, ValueError, TimeoutError ...
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ParamError(f"--ray {address}", f"cannot reach the Ray cluster ({reason})") from None
        self._job_ref = ray.put(job)
        self._task = ray.remote(num_cpus=1, max_retries=RETRIES - 1)(_ray_unit)

    def run(self, units: Iterable[Unit]) -> Iterator[UnitResult]:
        ray = self.ray
        refs = {self._task.remote(self._job_ref, unit): unit for unit in units}
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            unit = refs.pop(done[0])
            try:
                yield ray.get(done[0])
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else exc
                if isinstance(cause, RestorationError):
                    raise cause from None
                raise RenderFailed(describe(unit, self.job), f"failed ({_cause(cause)}); the work folder is kept: "
                                   "run the same command again to resume") from None
            except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
                raise RenderFailed(describe(unit, self.job), f"failed {RETRIES} times ({_cause(exc)}); the work "
                                   "folder is kept: run the same command again to resume") from None

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass  # tasks in flight finish on the cluster; their writes are atomic and a resume keeps what they made


def check_ray(address: str):
    """The ray module, once Ray is known to be installed and the cluster's address to answer; else one line."""
    if FROZEN:  # the bundle leaves Ray out (packaging/README.md says why); say so, not "install it"
        raise ParamError("--ray", "Ray is not included in the FilmRestore application bundle; to render on a Ray "
                                  "cluster, install FilmRestore from source with its cluster extra "
                                  "(pip install filmrestore[cluster]) and run that filmrestore")
    try:
        import ray
    except ImportError:
        raise ParamError("--ray", "Ray is not installed: pip install filmrestore[cluster]") from None
    if address not in ("local", "auto"):
        _check_reachable(address)
    return ray


def _check_reachable(address: str) -> None:
    """Ray waits minutes for an address that does not answer; ask it once, briefly, first."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ParamError(f"--ray {address}", "expected HOST:PORT of the cluster's head (or 'local', or 'auto')")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as exc:
        raise ParamError(f"--ray {address}", f"cannot reach the Ray cluster ({exc.strerror or exc})") from None


def _ray_unit(job: RenderJob, unit: Unit) -> UnitResult:
    pin_one_core(None)  # Ray places tasks on cores; the task keeps to one core's worth of threads
    return run_unit(job, unit)
