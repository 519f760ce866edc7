"""Describing an archive in parallel: worker processes on this machine, or tasks of a Dask cluster.

`cbmir_tf.archive.build_archive` cuts the sorted file list into chunks of ``chunk_size`` files (a
function of the list alone, never of the number of workers). A task reads, standardises and
describes one chunk with the fitted method and returns a `Shard`: the chunk's descriptors, the
files it read and those it skipped. The coordinator puts the shards back in chunk order and builds
the index exactly as one process does, so the saved archive is the same, byte for byte, whatever
ran the tasks (`open_runner`):

* ``workers=1``: the chunks are described in this process, one after another;
* ``workers=N``: a pool of N spawned processes (TensorFlow does not survive ``fork``), each
  rebuilding the method once and limited to ``cores // N`` threads;
* ``cluster=ADDRESS``: tasks of a `Dask distributed <https://distributed.dask.org>`_ cluster, the
  scheduler at ``tcp://HOST:PORT`` (``local:N`` starts a cluster of N worker processes here).
  A task that raises is retried twice (``retries``); the tasks of a worker that dies, running or
  finished but not yet collected, are run again on another (Dask's own recovery).

Shards travel back as task results, not files: the workers only need to read the images (at the
same path as the coordinator), no shared writable folder is needed, and nothing exists on disk
until the coordinator saves the archive atomically; a task killed midway leaves nothing behind.

A method that learns from the images (BoVW's vocabulary) is fitted on the coordinator first, on
all the readable images, as one process fits it (the images are read by the same kind of tasks);
the workers get its learned arrays (`MethodSpec`) and rebuild it from them, as `Archive.load` does.

A network's output depends, in its last bits, on the number of threads TensorFlow splits each
operation over. So a method that runs one (``cnn``, ``cnn+hog``) always describes in worker
processes whose TensorFlow runs on one thread (`NETWORK_THREADS`), ``workers=1`` included (a pool
of one process): then its vectors are the same for any number of workers, on one machine (another
CPU may round differently).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import threading
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CHUNK_SIZE", "NETWORK_THREADS", "TASK_RETRIES", "ClusterUnreachable", "DaskRunner", "InProcess",
           "IndexingError", "MethodSpec", "ProcessPool", "Shard", "available_cores", "chunked", "dask_client",
           "describe_chunk", "describe_images", "merge_shards", "open_runner", "parse_local", "read_chunk"]

#: Files per task: large enough that a task outweighs its scheduling, small enough to spread the work.
CHUNK_SIZE = 256
#: Times a cluster task that raised is run again before the run fails.
TASK_RETRIES = 2
#: TensorFlow threads of every process that describes with a network: the same in all of them, so
#: that the float sums, and so the vectors, are the same whatever the number of workers.
NETWORK_THREADS = 1


class IndexingError(RuntimeError):
    """A worker process or cluster task failed for good; the message is one line."""


class ClusterUnreachable(IndexingError):
    """No Dask scheduler answered at the given address."""


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def chunked(paths: Sequence[Path], size: int) -> list[list[Path]]:
    """``paths`` cut, in order, into consecutive chunks of ``size`` (the last one shorter)."""
    if size < 1:
        raise ValueError(f"chunk_size must be at least 1. Received: {size}")
    return [list(paths[start:start + size]) for start in range(0, len(paths), size)]


@dataclass(frozen=True)
class MethodSpec:
    """What a worker needs to rebuild a fitted method: its name, options and learned arrays.

    Attributes:
        name: A method of `cbmir_tf.methods.CLI_METHODS` (or `METHODS`).
        options: Keyword arguments of `cbmir_tf.methods.make_method`.
        image_size: Side the images are standardised to.
        batch_size: Images described per call.
        state: ``{part: {attribute: array}}``, the learned arrays of the parts that learn from images.
        network: The method runs a (Keras) network: it is described in worker processes only.
    """

    name: str
    options: dict
    image_size: int
    batch_size: int
    state: dict = field(default_factory=dict)
    network: bool = False

    @classmethod
    def of(cls, name: str, options: dict, method, image_size: int, batch_size: int) -> "MethodSpec":
        """The spec of ``method``, fitted (`make_method(name, **options)` then ``fit``)."""
        from cbmir_tf.archive import _learned_state, _parts

        parts = _parts(method)
        state = {part: _learned_state(m.descriptor) for part, m in parts.items()}
        network = any(type(value).__module__.startswith("keras") for m in parts.values()
                      for value in vars(m.descriptor).values())
        state = {part: arrays for part, arrays in state.items() if arrays}
        return cls(name, dict(options), int(image_size), int(batch_size), state, network)

    @property
    def token(self) -> str:
        """A sha256 of everything in the spec: equal specs, equal tokens (names the cluster's tasks)."""
        digest = hashlib.sha256(json.dumps([self.name, self.options, self.image_size, self.batch_size],
                                           sort_keys=True, default=repr).encode())
        for part in sorted(self.state):
            for name, array in sorted(self.state[part].items()):
                array = np.ascontiguousarray(array)
                digest.update(f"{part}/{name}/{array.dtype.str}/{array.shape}".encode())
                digest.update(array.tobytes())
        return digest.hexdigest()

    def build(self):
        """The fitted method, rebuilt from the spec as `Archive.load` rebuilds it."""
        from cbmir_tf.archive import _parts
        from cbmir_tf.methods import make_method

        method = make_method(self.name, **self.options)
        for part, method_part in _parts(method).items():
            descriptor = method_part.descriptor
            if descriptor.learns_from_images:
                for name, array in self.state[part].items():
                    setattr(descriptor, name, array)
            else:  # label-free descriptors learn nothing from the images
                descriptor.fit(np.zeros((1, self.image_size, self.image_size), np.uint8))
        return method


@dataclass
class Shard:
    """One chunk's result.

    Attributes:
        index: The chunk's position in the file list.
        kept: The files read, in order.
        skipped: ``(path, reason)`` of the files that could not be read.
        vectors: ``{part: (len(kept), d) array}`` (empty when nothing was read or described).
        images: The standardised images (only when the chunk was read to fit a method).
    """

    index: int
    kept: list[str]
    skipped: list[tuple[str, str]]
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    images: np.ndarray | None = None

    @property
    def files(self) -> int:
        return len(self.kept) + len(self.skipped)


def read_chunk(index: int, paths: Sequence[Path], image_size: int) -> Shard:
    """Read and standardise one chunk; unreadable files are skipped (`cbmir_tf.archive.read_images`)."""
    from cbmir_tf.archive import read_images

    images, kept, skipped = read_images(paths, image_size)
    return Shard(index, [str(p) for p in kept], skipped, images=images)


def describe_images(method, images: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
    """``{part: vectors}`` of standardised images, described ``batch_size`` at a time."""
    from cbmir_tf.archive import _parts

    if not len(images):
        return {}
    starts = range(0, len(images), batch_size)
    return {name: np.concatenate([part.describe(images[s:s + batch_size]) for s in starts])
            for name, part in _parts(method).items()}


def describe_chunk(method, index: int, paths: Sequence[Path], image_size: int, batch_size: int) -> Shard:
    """Read, standardise and describe one chunk with a fitted method."""
    shard = read_chunk(index, paths, image_size)
    shard.vectors, shard.images = describe_images(method, shard.images, batch_size), None
    return shard


def merge_shards(shards: Sequence[Shard]) -> tuple[list[Path], list[tuple[str, str]], dict[str, np.ndarray]]:
    """The shards joined in chunk order: ``(kept, skipped, {part: vectors})``."""
    shards = sorted(shards, key=lambda shard: shard.index)
    if [s.index for s in shards] != list(range(len(shards))):
        raise IndexingError(f"chunks {[s.index for s in shards]} came back, not 0..{len(shards) - 1}")
    kept = [Path(p) for shard in shards for p in shard.kept]
    skipped = [tuple(s) for shard in shards for s in shard.skipped]
    described = [shard.vectors for shard in shards if shard.vectors]
    names = described[0] if described else {}
    vectors = {part: np.concatenate([v[part] for v in described]) for part in names}
    return kept, skipped, vectors


# ---- worker side --------------------------------------------------------------------------------

_BUILT: dict[str, Any] = {}  # the method this worker process rebuilt, by spec token
_BUILD_LOCK = threading.Lock()
_POOL_SPEC: MethodSpec | None = None
_PREPARED = False


def _method_for(spec: MethodSpec):
    """The method of ``spec``, rebuilt once per process (a network is loaded once, not per chunk)."""
    token = spec.token
    with _BUILD_LOCK:
        if token not in _BUILT:
            _BUILT.clear()  # one method at a time: a network can be large
            _BUILT[token] = spec.build()
        return _BUILT[token]


def _prepare_process(threads: int) -> None:
    """Once per worker process: cap its thread pools (BLAS, OpenMP, OpenCV and FAISS to ``threads``,
    TensorFlow, if it has not started yet, to `NETWORK_THREADS`), and give tqdm a thread lock (its
    default, a multiprocessing lock, would be reported as leaked when the process is killed)."""
    global _PREPARED
    if _PREPARED:
        return
    _PREPARED = True
    from tqdm.auto import tqdm

    tqdm.set_lock(threading.RLock())
    os.environ["OMP_NUM_THREADS"] = str(threads)  # read when OpenMP starts in this process
    for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):  # read when TensorFlow starts
        os.environ[name] = str(NETWORK_THREADS)
    import cv2
    from threadpoolctl import threadpool_limits

    cv2.setNumThreads(threads)
    threadpool_limits(threads)


def _init_pool_worker(spec: MethodSpec | None, threads: int) -> None:
    """Start of a pool process: Ctrl-C is the coordinator's to handle; threads capped; the spec kept."""
    global _POOL_SPEC
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _prepare_process(threads)
    _POOL_SPEC = spec


def _pool_read(index: int, paths: list[Path], image_size: int) -> Shard:
    return read_chunk(index, paths, image_size)


def _pool_describe(index: int, paths: list[Path]) -> Shard:
    spec = _POOL_SPEC
    return describe_chunk(_method_for(spec), index, paths, spec.image_size, spec.batch_size)


def _dask_threads() -> int:
    from distributed import get_worker

    worker = get_worker()
    return int(getattr(getattr(worker, "state", worker), "nthreads", 1) or 1)


def _dask_read(index: int, paths: list[str], image_size: int) -> Shard:
    _prepare_process(_dask_threads())
    return read_chunk(index, [Path(p) for p in paths], image_size)


def _dask_describe(spec: MethodSpec, index: int, paths: list[str]) -> Shard:
    _prepare_process(_dask_threads())
    paths = [Path(p) for p in paths]
    return describe_chunk(_method_for(spec), index, paths, spec.image_size, spec.batch_size)


def _same(value):
    return value


# ---- coordinator side ---------------------------------------------------------------------------

def _one_line(err: BaseException) -> str:
    return " ".join(f"{type(err).__name__}: {err}".split())


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not enabled)


class InProcess:
    """Chunks described one after another in this process (``workers=1``); shards in chunk order."""

    def read(self, chunks: list[list[Path]], image_size: int, progress: bool = False) -> list[Shard]:
        with _progress(sum(map(len, chunks)), "reading", progress) as bar:
            return [_tick(bar, read_chunk(i, chunk, image_size)) for i, chunk in enumerate(chunks)]

    def describe(self, spec: MethodSpec, method, chunks: list[list[Path]], progress: bool = False,
                 read: list[Shard] | None = None) -> list[Shard]:
        """Describe every chunk with ``method``; the images of ``read`` (the same chunks) are not read again.
        A network describes in one worker process instead (see the module docstring)."""
        if spec.network:
            return ProcessPool(1).describe(spec, method, chunks, progress, read)
        shards = []
        with _progress(sum(map(len, chunks)), "describing", progress) as bar:
            for i, chunk in enumerate(chunks):
                if read is not None:
                    shard = Shard(i, read[i].kept, read[i].skipped,
                                  describe_images(method, read[i].images, spec.batch_size))
                else:
                    shard = describe_chunk(method, i, chunk, spec.image_size, spec.batch_size)
                shards.append(_tick(bar, shard))
        return shards


def _tick(bar, shard: Shard) -> Shard:
    bar.update(shard.files)
    return shard


class ProcessPool:
    """Chunks described by ``workers`` spawned processes of this machine (one pool per phase);
    shards in chunk order."""

    def __init__(self, workers: int):
        self.workers = int(workers)

    def read(self, chunks: list[list[Path]], image_size: int, progress: bool = False) -> list[Shard]:
        if len(chunks) == 1:  # one chunk: starting a process would only cost time
            return InProcess().read(chunks, image_size, progress)
        calls = [(_pool_read, i, chunk, image_size) for i, chunk in enumerate(chunks)]
        return self._run(calls, None, "reading", progress)

    def describe(self, spec: MethodSpec, method, chunks: list[list[Path]], progress: bool = False,
                 read: list[Shard] | None = None) -> list[Shard]:
        if len(chunks) == 1 and not spec.network:  # one chunk: starting a process would only cost time
            return InProcess().describe(spec, method, chunks, progress, read)
        return self._run([(_pool_describe, i, chunk) for i, chunk in enumerate(chunks)], spec, "describing",
                         progress)

    def _run(self, calls: list[tuple], spec: MethodSpec | None, desc: str, progress: bool) -> list[Shard]:
        import concurrent.futures as cf
        import multiprocessing

        workers = min(self.workers, len(calls))
        threads = max(1, available_cores() // workers)
        pool = cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                      initializer=_init_pool_worker, initargs=(spec, threads))
        shards = []
        try:
            futures = {pool.submit(*call): call[1] for call in calls}
            with _progress(sum(len(call[2]) for call in calls), desc, progress) as bar:
                for future in cf.as_completed(futures):
                    try:
                        shards.append(_tick(bar, future.result()))
                    except cf.process.BrokenProcessPool as err:
                        raise IndexingError(f"a worker process died while {desc} chunk {futures[future]} "
                                            f"(killed, or out of memory?): {_one_line(err)}") from None
        except BaseException:
            processes = list((getattr(pool, "_processes", None) or {}).values())  # no public API stops them
            pool.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()
            for process in processes:
                process.join(5)
            pool.shutdown(wait=True)  # the pool's manager thread sees them gone and frees its queues
            raise
        pool.shutdown()
        return sorted(shards, key=lambda shard: shard.index)


class DaskRunner:
    """Chunks described as tasks of a Dask cluster (`TASK_RETRIES` retries each, deterministic keys);
    shards in chunk order."""

    def __init__(self, client):
        self.client = client

    def read(self, chunks: list[list[Path]], image_size: int, progress: bool = False) -> list[Shard]:
        run = _run_token("read", image_size, chunks)
        futures = {self.client.submit(_dask_read, i, [str(p) for p in chunk], image_size,
                                      key=f"cbmir-read-{run}-{i:06d}", retries=TASK_RETRIES, pure=True): chunk
                   for i, chunk in enumerate(chunks)}
        return self._collect(futures, "reading", progress)

    def describe(self, spec: MethodSpec, method, chunks: list[list[Path]], progress: bool = False,
                 read: list[Shard] | None = None) -> list[Shard]:
        token = spec.token
        run = _run_token(token, spec.image_size, chunks)
        # the spec (a vocabulary can weigh megabytes) travels once, as a task any worker can recompute
        shared = self.client.submit(_same, spec, key=f"cbmir-spec-{token[:16]}", pure=True)
        futures = {self.client.submit(_dask_describe, shared, i, list(map(str, chunk)), retries=TASK_RETRIES,
                                      pure=True, key=f"cbmir-describe-{run}-{i:06d}"): chunk
                   for i, chunk in enumerate(chunks)}
        try:
            return self._collect(futures, "describing", progress)
        finally:
            shared.release()

    def _collect(self, futures: dict, desc: str, progress: bool) -> list[Shard]:
        from distributed import as_completed

        shards = []
        try:
            with _progress(sum(map(len, futures.values())), desc, progress) as bar:
                for future in as_completed(list(futures), raise_errors=False):
                    chunk = futures.pop(future)
                    if future.status == "error":
                        error = _one_line(future.exception())
                        raise IndexingError(f"the Dask task {desc} {len(chunk)} files from {chunk[0]} failed "
                                            f"after {TASK_RETRIES + 1} tries: {error}")
                    if future.status != "finished":
                        raise IndexingError(f"the Dask task {desc} {len(chunk)} files from {chunk[0]} was "
                                            f"{future.status} (was the scheduler lost?)")
                    shards.append(_tick(bar, future.result()))
                    future.release()
        except BaseException:
            self.client.cancel(list(futures))
            raise
        return sorted(shards, key=lambda shard: shard.index)


def _run_token(what: str, image_size: int, chunks: list[list[Path]]) -> str:
    """A short sha256 of a run's inputs: the same inputs give the same task keys."""
    digest = hashlib.sha256(f"{what}/{image_size}/{len(chunks)}".encode())
    for chunk in chunks:
        digest.update(b"\0".join(os.fsencode(p) for p in chunk) + b"\1")
    return digest.hexdigest()[:16]


def parse_local(address: str) -> int | None:
    """N of ``"local:N"`` (a local cluster of N workers), else None. Raises ValueError for a bad N."""
    if not address.startswith("local:"):
        return None
    text = address[len("local:"):]
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"local:N needs a number of workers N >= 1. Received: {address!r}")
    return int(text)


@contextlib.contextmanager
def dask_client(address: str) -> Iterator[Any]:
    """A `distributed.Client` of the scheduler at ``address``, or of a new local cluster for ``local:N``
    (N worker processes of one thread, on 127.0.0.1, closed on exit).

    Raises:
        ClusterUnreachable: no scheduler answered at ``address`` (within Dask's connect timeout,
            ``distributed.comm.timeouts.connect``).
    """
    import dask
    from distributed import Client, LocalCluster

    workers = parse_local(address)
    if workers is not None:
        with warnings.catch_warnings():  # its HTTP server (127.0.0.1) takes another port when 8787 is taken
            warnings.filterwarnings("ignore", "Port .* is already in use", UserWarning)
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None, silence_logs=logging.ERROR)
        with cluster, Client(cluster) as client:
            yield client
        return
    timeout = dask.config.get("distributed.comm.timeouts.connect")
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as err:
        raise ClusterUnreachable(f"cannot reach the Dask scheduler at {address}: {_one_line(err)}") from None
    with client:
        yield client


@contextlib.contextmanager
def open_runner(workers: int = 1, cluster=None) -> Iterator[InProcess | ProcessPool | DaskRunner]:
    """The runner of a build: a Dask cluster (an address, ``"local:N"`` or a `distributed.Client`),
    else ``workers`` processes of this machine (1: this process)."""
    if isinstance(cluster, str):
        with dask_client(cluster) as client:
            yield DaskRunner(client)
    elif cluster is not None:
        yield DaskRunner(cluster)
    elif int(workers) <= 1:
        yield InProcess()
    else:
        yield ProcessPool(int(workers))
