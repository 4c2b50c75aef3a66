"""Where antiapi keeps its files, and the one safe way to write a private file.

Owns the data directory (``platformdirs.user_data_dir("antiapi")`` unless overridden), the default
config file name, and :func:`save_text_atomic` (also used for OAuth tokens).

Never reads ``os.environ``: ``antiapi/config/load.py`` reads ``ANTI_API_DATA_DIR`` and passes it in
as ``override``. May import: the standard library and platformdirs.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import platformdirs

__all__ = ["APP_NAME", "CONFIG_FILENAME", "config_path", "data_dir", "default_data_dir", "save_text_atomic"]

APP_NAME = "antiapi"
CONFIG_FILENAME = "config.yaml"


def default_data_dir() -> Path:
    """The platform's per-user data directory for antiapi (not created)."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def data_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Return the data directory as an absolute path, creating it (mode 0700) when missing.

    Args:
        override: a directory to use instead of the platform default (``~`` is expanded).

    Raises:
        OSError: the directory cannot be created (e.g. a file has that name).
    """
    path = Path(override).expanduser() if override else default_data_dir()
    path = path.absolute()
    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkdir's mode is filtered by the umask; make it exactly owner-only.
        os.chmod(path, 0o700)
    return path


def config_path(directory: Path) -> Path:
    """The default config file inside a data directory."""
    return directory / CONFIG_FILENAME


def save_text_atomic(path: str | os.PathLike[str], text: str, mode: int = 0o600) -> None:
    """Write ``text`` (UTF-8) to ``path`` so readers see the old file or the new one, never half.

    Writes a temporary file in the same directory with ``mode`` already set (so the content is
    never readable by others, whatever the umask), fsyncs it, renames it over ``path`` and fsyncs
    the directory. Creates a missing parent directory with mode 0700.

    Raises:
        OSError: the file cannot be written; no temporary file is left behind.
    """
    target = Path(path)
    parent = target.parent
    if not parent.is_dir():
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if not hasattr(os, "fchmod"):  # Windows before 3.13
            os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(parent)


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself (POSIX). Some platforms cannot open a directory; that is fine."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass  # e.g. filesystems that do not support fsync on directories; the data is already synced
    finally:
        os.close(dir_fd)
