"""The output folder of `kal.compare`: checked before training, locked, written atomically.

While a comparison runs, it writes ``runs.csv``, ``summary.csv`` and ``results.json`` after
every finished run into the folder's ``unfinished/`` subfolder (``"complete": false``), so an
interrupted or killed comparison keeps its finished runs and ``resume=True`` (CLI
``--resume``) continues it. The results of an earlier, finished comparison in the folder stay
untouched until the new comparison has finished: only then are its files moved into the
folder, replacing the earlier ones, and files of the earlier comparison that the new one does
not produce are removed. A comparison that fails or is interrupted therefore never leaves the
folder without the earlier results.

Every file is written to a temporary name and renamed, so a reader never sees half a file, and
gets the permissions the process's umask gives a new file. An exclusive `fcntl` lock keeps two
comparisons from writing into one folder; the kernel releases it when its process ends, so a
killed comparison leaves no stale lock behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator

__all__ = ["OUTPUT_FILES", "UNFINISHED", "OutputDirectory", "atomic_write"]

#: Every file `compare` may write into its output folder.
OUTPUT_FILES = (
    "runs.csv",
    "summary.csv",
    "results.json",
    "paired.csv",
    "learning_curves.png",
    "paired_differences.png",
    "parameters.png",
)
#: The subfolder that holds a running (or interrupted) comparison's files.
UNFINISHED = "unfinished"
_LOCK = ".compare.lock"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str, write: Callable[[str], None]) -> str:
    """Calls ``write(temporary_path)``, then renames the temporary file to ``path``.

    The file gets the mode a plain ``open(path, "w")`` would give it (``0o666`` less the
    umask), not the private ``0o600`` of a temporary file.
    """
    directory, name = os.path.split(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=directory or ".")
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
    return path


class OutputDirectory:
    """An output folder, validated at construction (before any training).

    Raises:
        ValueError: if the path is a file, cannot be created or written, or one of the
            `OUTPUT_FILES` in it is a folder (it could not be replaced).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        if os.path.exists(path) and not os.path.isdir(path):
            raise ValueError(
                f"output {path!r} is a file, not a directory: name a new or existing folder."
            )
        try:
            os.makedirs(path, exist_ok=True)
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as error:
            raise ValueError(f"output {path!r} cannot be written: {error.strerror}.") from error
        for name in OUTPUT_FILES:
            if os.path.isdir(self.file(name)):
                raise ValueError(
                    f"output {path!r} holds a folder named {name!r}, where compare writes a "
                    "file: move it away or choose another output folder."
                )
        if os.path.exists(self.unfinished) and not os.path.isdir(self.unfinished):
            raise ValueError(
                f"output {path!r} holds a file named {UNFINISHED!r}, where compare keeps a "
                "running comparison's files: move it away or choose another output folder."
            )

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    @property
    def unfinished(self) -> str:
        """The subfolder of a running or interrupted comparison."""
        return self.file(UNFINISHED)

    def unfinished_file(self, name: str) -> str:
        return os.path.join(self.unfinished, name)

    def start_unfinished(self) -> str:
        """Creates the `unfinished` subfolder (empty) and returns its path."""
        shutil.rmtree(self.unfinished, ignore_errors=True)
        os.makedirs(self.unfinished)
        return self.unfinished

    def drop_empty_unfinished(self) -> None:
        """Removes `unfinished` when it holds no finished run (a comparison stopped before its
        first run ended)."""
        if not os.path.exists(self.unfinished_file("results.json")):
            shutil.rmtree(self.unfinished, ignore_errors=True)

    def publish(self, written: set[str]) -> None:
        """Moves the finished comparison's files (names in ``written``) from `unfinished`
        into the folder, removes the `OUTPUT_FILES` of an earlier comparison that it did not
        write, and removes `unfinished`."""
        for name in OUTPUT_FILES:
            if name in written:
                os.replace(self.unfinished_file(name), self.file(name))
        for name in OUTPUT_FILES:
            if name not in written:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.file(name))
        shutil.rmtree(self.unfinished, ignore_errors=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Holds the folder's lock for the duration.

        The lock is `fcntl.flock` on ``.compare.lock`` (with the holder's process id written
        into it for the message others get). The file is removed on release; a process that
        locked a file that was removed meanwhile retries on the new one, so two processes
        never hold the lock together.

        Raises:
            ValueError: another live process holds the lock.
        """
        lock = self.file(_LOCK)
        while True:
            descriptor = os.open(lock, os.O_CREAT | os.O_RDWR, 0o666)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                os.close(descriptor)
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                owner = ""
                with contextlib.suppress(OSError), open(lock) as file:
                    owner = file.read().strip()
                who = f"process {owner}" if owner.isdigit() else "another process"
                raise ValueError(
                    f"another comparison ({who}) is writing to {self.path!r}; wait for it or "
                    "choose another output folder."
                ) from None
            try:
                same = os.stat(lock).st_ino == os.fstat(descriptor).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(descriptor)  # locked a file its holder removed on release: retry
        try:
            os.ftruncate(descriptor, 0)
            os.write(descriptor, str(os.getpid()).encode())
            yield
        finally:
            with contextlib.suppress(OSError):
                os.remove(lock)
            os.close(descriptor)
