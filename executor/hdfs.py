"""The one HDFS edge of the executor and the scheduler: a thin client over the ``hdfs``
library's WebHDFS ``InsecureClient``.

Every failure is one :class:`HdfsError` carrying the remote exception's name (or the network
error's) and the path. Writes go to a temporary name beside the target and are renamed into
place, so a reader never sees half a file or half a folder. Reads stream in 1 MiB chunks and
check the size against the NameNode's. Only what may succeed when tried again is retried
(network errors, time-outs and HDFS's retriable exceptions); a missing file or a refused
permission fails at once.
"""

from __future__ import annotations

import logging
import os
import posixpath
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import hdfs
import requests
import requests.adapters

log = logging.getLogger("clusterjobs.hdfs")
# The library logs every request at INFO; our own lines say what matters.
logging.getLogger("hdfs.client").setLevel(logging.WARNING)

CHUNK = 1 << 20  # 1 MiB
#: Above this size a download reads ranges of this size on parallel connections.
RANGE_SIZE = 128 << 20
# The DataNode serves each connection on one thread: 8 reads a 1 GiB file block by block.
RANGE_THREADS = 8
#: Files of one upload sent at once (each is a NameNode CREATE then a DataNode PUT).
UPLOAD_THREADS = 4
#: Upload threads of one Hdfs, shared by the uploads of all its callers (an executor's tasks),
#: each caller having at most UPLOAD_THREADS files in flight: a task's many or large outputs
#: do not hold up another task's small files until this many are on their way.
UPLOAD_POOL_THREADS = 32
#: Kept-alive connections per host (NameNode, DataNode), shared by every thread of an Hdfs.
POOL_SIZE = 64
ATTEMPTS = 3
BACKOFF = (0.2, 1.0)  # seconds before the 2nd and 3rd attempt

#: HDFS exceptions that may go away on their own (a NameNode starting or failing over).
RETRIABLE_REMOTE = frozenset({"RetriableException", "StandbyException", "SafeModeException",
                              "ObserverRetryOnActiveException"})

T = TypeVar("T")


class HdfsError(Exception):
    """An HDFS operation failed: ``exception`` is the remote exception's simple name (e.g.
    ``FileNotFoundException``) or the local error's type, ``path`` the HDFS path concerned."""

    def __init__(self, path: str, exception: str, message: str) -> None:
        one_line = " ".join(str(message).split())
        if len(one_line) > 300:
            one_line = one_line[:297] + "..."
        super().__init__(f"HDFS {path}: {exception}: {one_line}")
        self.path = path
        self.exception = exception
        self.message = one_line


def _remote_name(exc: hdfs.util.HdfsError) -> str:
    name = getattr(exc, "exception", None) or "HdfsError"
    return str(name).rsplit(".", 1)[-1]


def _retriable(exc: BaseException) -> bool:
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return True
    return isinstance(exc, hdfs.util.HdfsError) and _remote_name(exc) in RETRIABLE_REMOTE


def _as_error(path: str, exc: BaseException) -> HdfsError:
    if isinstance(exc, HdfsError):
        return exc
    if isinstance(exc, hdfs.util.HdfsError):
        return HdfsError(path, _remote_name(exc), exc.message)
    return HdfsError(path, type(exc).__name__, str(exc))


class Hdfs:
    """WebHDFS at ``url`` acting as ``user``. Thread-safe: each thread gets its own client
    (a ``requests`` session is not meant to be shared between threads), but all of them draw
    on one pool of kept-alive connections (urllib3's pools are thread-safe), so a long-lived
    ``Hdfs`` (one per executor and user) opens no new TCP connection per task."""

    def __init__(self, url: str, user: str, *, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.user = user
        self.timeout = timeout
        self._local = threading.local()
        self._adapter = requests.adapters.HTTPAdapter(pool_connections=8, pool_maxsize=POOL_SIZE)
        self._uploads: ThreadPoolExecutor | None = None
        self._uploads_lock = threading.Lock()

    @property
    def client(self) -> hdfs.InsecureClient:
        found = getattr(self._local, "client", None)
        if found is None:
            session = requests.Session()
            session.mount("http://", self._adapter)
            session.mount("https://", self._adapter)
            found = hdfs.InsecureClient(self.url, user=self.user, timeout=self.timeout,
                                        session=session)
            self._local.client = found
        return found

    def _upload_pool(self) -> ThreadPoolExecutor:
        """Threads kept for concurrent file uploads (created on first use, then reused)."""
        with self._uploads_lock:
            if self._uploads is None:
                self._uploads = ThreadPoolExecutor(UPLOAD_POOL_THREADS,
                                                   thread_name_prefix="hdfs-upload")
            return self._uploads

    def _call(self, path: str, what: Callable[[], T]) -> T:
        """Run ``what``, retrying what is retriable; any failure becomes an HdfsError."""
        for attempt in range(ATTEMPTS):
            try:
                return what()
            except (hdfs.util.HdfsError, requests.RequestException, OSError) as exc:
                if attempt + 1 < ATTEMPTS and _retriable(exc):
                    log.warning("hdfs retry", extra={"path": path, "error": type(exc).__name__,
                                                     "attempt": attempt + 1})
                    time.sleep(BACKOFF[attempt])
                    continue
                raise _as_error(path, exc) from None
        raise AssertionError("unreachable")

    # --- metadata ------------------------------------------------------------------------

    def status(self, path: str) -> dict[str, Any] | None:
        """The FileStatus of ``path``, or None when it does not exist."""
        return self._call(path, lambda: self.client.status(path, strict=False))

    def exists(self, path: str) -> bool:
        return self.status(path) is not None

    def list(self, path: str) -> list[str]:
        """Names in the folder ``path`` (sorted)."""
        return self._call(path, lambda: self.client.list(path))

    def makedirs(self, path: str, permission: str | None = None) -> None:
        self._call(path, lambda: self.client.makedirs(path, permission=permission))

    def set_owner(self, path: str, owner: str, group: str | None = None) -> None:
        self._call(path, lambda: self.client.set_owner(path, owner=owner, group=group))

    def delete(self, path: str, recursive: bool = False) -> bool:
        return bool(self._call(path, lambda: self.client.delete(path, recursive=recursive)))

    def rename(self, source: str, target: str) -> None:
        """Move ``source`` to ``target``, which must not exist: one RENAME with
        ``renameoptions=NONE`` (HDFS's rename2), which fails with FileAlreadyExistsException
        where a plain rename would move *into* an existing folder, and checks that in the
        same NameNode operation. A retry after a lost answer finds the move done and
        accepts it."""
        attempts = 0

        def move() -> None:
            nonlocal attempts
            attempts += 1
            if attempts > 1 and self.client.status(source, strict=False) is None \
                    and self.client.status(target, strict=False) is not None:
                return  # an earlier attempt did it; its answer was lost
            self.client._rename(self.client.resolve(source),
                                destination=self.client.resolve(target), renameoptions="NONE")
        self._call(target, move)

    # --- data ----------------------------------------------------------------------------

    def read_bytes(self, path: str) -> bytes:
        """A small file's content (specs, records)."""
        def read() -> bytes:
            with self.client.read(path) as reader:
                return reader.read()
        return self._call(path, read)

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write a small file atomically: a temporary name beside it, then rename."""
        tmp = temp_name(path)
        try:
            self._call(tmp, lambda: self.client.write(tmp, data=data, overwrite=True))
            self.rename(tmp, path)
        except BaseException:
            self._discard(tmp)
            raise

    def download(self, path: str, local: Path, *, expect_size: int | None = None,
                 cancelled: Callable[[], bool] | None = None) -> int:
        """Stream ``path`` into the local file ``local``; returns the bytes written.

        The size must match the NameNode's (and ``expect_size`` when given). Large files are
        read as ranges on parallel connections, each written at its offset. ``cancelled`` is
        asked at every chunk; when it answers True the read stops with an HdfsError whose
        ``exception`` is ``Cancelled`` (a killed task does not wait for a large input)."""
        info = self.status(path)
        if info is None:
            raise HdfsError(path, "FileNotFoundException", "File does not exist")
        if info.get("type") != "FILE":
            raise HdfsError(path, "NotAFileException", "is a folder, not a file")
        size = int(info["length"])
        if expect_size is not None and size != expect_size:
            raise HdfsError(path, "SizeMismatch", f"expected {expect_size} bytes, HDFS has {size}")
        local.parent.mkdir(parents=True, exist_ok=True)
        ranges = [(start, min(RANGE_SIZE, size - start)) for start in range(0, size, RANGE_SIZE)]
        with open(local, "wb") as out:
            out.truncate(size)
            fd = out.fileno()
            if len(ranges) <= 1:
                written = self._read_range(path, fd, 0, size, cancelled) if size else 0
            else:
                with ThreadPoolExecutor(min(RANGE_THREADS, len(ranges))) as pool:
                    written = sum(pool.map(
                        lambda r: self._read_range(path, fd, *r, cancelled), ranges))
        if written != size:
            raise HdfsError(path, "SizeMismatch", f"read {written} bytes, HDFS has {size}")
        return written

    def _read_range(self, path: str, fd: int, start: int, length: int,
                    cancelled: Callable[[], bool] | None = None) -> int:
        def read() -> int:
            done = 0
            with self.client.read(path, offset=start, length=length,
                                  chunk_size=CHUNK) as chunks:
                for chunk in chunks:
                    if cancelled is not None and cancelled():
                        raise HdfsError(path, "Cancelled", f"read stopped at byte {start + done}")
                    if done + len(chunk) > length:
                        raise HdfsError(path, "SizeMismatch",
                                        f"more than {length} bytes at offset {start}")
                    os.pwrite(fd, chunk, start + done)
                    done += len(chunk)
            return done
        return self._call(path, read)

    def upload_tree(self, target: str, files: list[tuple[Path, str]]) -> list[str]:
        """Upload local files as ``target/<relative name>``, all at once: into a temporary
        folder beside ``target``, then one rename. An existing ``target`` (an earlier attempt
        whose result was lost) is first moved aside, never merged into. Returns HDFS paths.

        The files go up concurrently (CREATE makes the temporary folders); their sizes are
        then checked with one LISTSTATUS per folder rather than one GETFILESTATUS per file."""
        tmp = temp_name(target)
        try:
            if not files:
                self.makedirs(tmp)
            pool, slots = self._upload_pool(), threading.BoundedSemaphore(UPLOAD_THREADS)

            def upload(local: Path, remote: str) -> int:
                try:
                    return self._upload_file(local, remote)
                finally:
                    slots.release()

            futures = []
            for local, name in files:
                slots.acquire()  # at most UPLOAD_THREADS of this call's files at once
                futures.append(pool.submit(upload, local, posixpath.join(tmp, name)))
            errors = [f.exception() for f in futures]  # waits for all: none writes late
            if first := next((e for e in errors if e is not None), None):
                raise first
            sizes = {name: f.result() for (_, name), f in zip(files, futures, strict=True)}
            listed: dict[str, int] = {}
            for folder in folders_of(sizes):
                remote = posixpath.join(tmp, folder) if folder else tmp
                for entry in self._call(remote, lambda r=remote: self._list_status(r)):
                    if entry.get("type") == "FILE":
                        listed[posixpath.join(folder, entry["pathSuffix"])] = int(entry["length"])
            if bad := size_mismatches(sizes, listed):
                name, want, got = bad[0]
                raise HdfsError(posixpath.join(tmp, name), "SizeMismatch",
                                f"uploaded {want} bytes, HDFS has {got}")
            try:
                self.rename(tmp, target)
            except HdfsError as exc:
                if exc.exception != "FileAlreadyExistsException":
                    raise
                aside = f"{target}.replaced-{int(time.time())}-{secrets.token_hex(3)}"
                self.rename(target, aside)
                log.warning("output folder replaced", extra={"path": target, "old": aside})
                self.rename(tmp, target)
        except BaseException:
            self._discard(tmp, recursive=True)
            raise
        return [posixpath.join(target, name) for _, name in files]

    def _list_status(self, folder: str) -> list[dict[str, Any]]:
        """One LISTSTATUS: the library's ``list`` adds a GETFILESTATUS when a folder holds
        exactly one entry, a round trip per task that is not needed here."""
        answer = self.client._list_status(self.client.resolve(folder))
        return list(answer.json()["FileStatuses"]["FileStatus"])

    def _upload_file(self, local: Path, remote: str) -> int:
        """Write one local file at ``remote`` (retried like any call); returns its size."""
        def put() -> int:
            with open(local, "rb") as data:
                size = os.fstat(data.fileno()).st_size
                if size <= CHUNK:  # one body rather than chunked encoding
                    self.client.write(remote, data=data.read(), overwrite=True)
                else:
                    self.client.write(remote, data=_chunks(data), overwrite=True)
            return size
        return self._call(remote, put)

    def _discard(self, path: str, recursive: bool = False) -> None:
        """Remove a temporary path after a failure; a failure here is only logged."""
        try:
            self.client.delete(path, recursive=recursive)
        except Exception as exc:  # the original error matters more
            log.warning("hdfs clean-up failed", extra={"path": path, "error": str(exc)})


def _chunks(handle: Any) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK):
        yield chunk


def temp_name(path: str) -> str:
    """A hidden sibling of ``path`` for writing before the rename (``.name.tmp-<random>``)."""
    folder, name = posixpath.split(path.rstrip("/"))
    return posixpath.join(folder, f".{name}.tmp-{secrets.token_hex(4)}")


def folders_of(names: Iterable[str]) -> list[str]:
    """The distinct folders (relative, "" for the top) holding the given relative file
    names, sorted: what one LISTSTATUS each must cover to see every file."""
    return sorted({posixpath.dirname(name) for name in names})


def size_mismatches(expected: dict[str, int],
                    listed: dict[str, int]) -> list[tuple[str, int, int | None]]:
    """(name, expected size, size HDFS lists or None when missing) for every file whose
    upload did not land whole, in name order."""
    return [(name, size, listed.get(name)) for name, size in sorted(expected.items())
            if listed.get(name) != size]
