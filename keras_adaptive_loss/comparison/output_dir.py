"""The output folder of `kal.compare`: checked before training, locked, written atomically.

A comparison writes ``runs.csv``, ``summary.csv`` and ``results.json`` after every finished
run (``"complete": false`` until the last), so an interrupted or killed comparison keeps its
finished runs and ``resume=True`` (CLI ``--resume``) continues it. Every file is written to a
temporary name and renamed, so a reader never sees half a file; a lock file keeps two
comparisons from writing into one folder; and files of an earlier comparison that this one
does not produce are removed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator

__all__ = ["OUTPUT_FILES", "OutputDirectory", "atomic_write"]

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
_LOCK = ".compare.lock"


def atomic_write(path: str, write: Callable[[str], None]) -> str:
    """Calls ``write(temporary_path)``, then renames the temporary file to ``path``."""
    directory, name = os.path.split(path)
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=directory or ".")
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutputDirectory:
    """An output folder, validated at construction (before any training).

    Raises:
        ValueError: if the path is a file, cannot be created or written, or another live
            comparison holds its lock.
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

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Holds the folder's lock file (with this process's id) for the duration."""
        lock = self.file(_LOCK)
        try:
            descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                with open(lock) as file:
                    owner = int(file.read().strip() or 0)
            except (OSError, ValueError):
                owner = 0
            if owner and owner != os.getpid() and _alive(owner):
                raise ValueError(
                    f"another comparison (process {owner}) is writing to {self.path!r}; wait "
                    f"for it or choose another output folder (remove {lock} if it is stale)."
                ) from None
            os.remove(lock)  # a stale lock of a killed comparison
            descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        with os.fdopen(descriptor, "w") as file:
            file.write(str(os.getpid()))
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.remove(lock)

    def remove_except(self, kept: set[str]) -> None:
        """Removes the `OUTPUT_FILES` not named in ``kept`` (left by an earlier comparison)."""
        for name in OUTPUT_FILES:
            if name not in kept:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.file(name))
