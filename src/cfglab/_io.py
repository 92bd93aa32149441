"""Atomic writes: the one place where cfglab puts a file (or a folder) on disk.

Every result is written to a temporary sibling in the same folder and renamed onto its final
name with ``os.replace``, so a reader sees either the old content or the new one, never a
partial file, and a killed run leaves no half-written result behind (see ``docs/design.md``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

from cfglab._validate import CfglabInputError

__all__ = ["atomic_path", "json_clean", "save_figure_atomic", "write_atomic", "write_json_atomic", "write_text_atomic"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, directory: bool = False):
    """Yield a temporary path next to ``path``; on success rename it onto ``path``, else remove it.

    The temporary name keeps ``path``'s suffix (``.x.tmp.png``), so writers that infer the
    format from the name (matplotlib, pandas) behave as for ``path``.  ``directory=True``
    yields a fresh folder (mode 755) that replaces a folder ``path`` as a whole.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
        tmp.chmod(0o755)  # mkdtemp makes it private; results are ordinary folders
    else:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if directory:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp_path)`` and rename the result onto ``path``; an OS error names the file.

    Raises :class:`CfglabInputError` (exit status 2) when ``path`` cannot be written.
    """
    try:
        with atomic_path(path) as tmp:
            write(tmp)
    except OSError as err:
        raise CfglabInputError(f"cannot write {str(path)!r}: {err.strerror}") from None
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return write_atomic(path, lambda tmp: Path(tmp).write_text(text))


def save_figure_atomic(fig, path: str | os.PathLike, *, dpi: int = 120) -> Path:
    """Write a matplotlib figure to ``path`` atomically (format from the suffix) and close it."""
    import matplotlib.pyplot as plt

    try:
        return write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=dpi))
    finally:
        plt.close(fig)


def json_clean(obj):
    """``obj`` with non-finite floats replaced by ``None`` (JSON has no NaN / inf)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_clean(v) for v in obj]
    return obj


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as JSON (indent 1, NaN / inf as ``null``) to ``path`` atomically."""
    return write_text_atomic(path, json.dumps(json_clean(obj), indent=1))
