"""Safe output writing: every file einloom writes goes through here.

Rules (one for every command and flag: ``--out``, ``--dot``, ``--save-mapping``, ``evaluate -o``,
``rtl -o``):

* missing parent folders are created;
* a file path that names an existing folder writes *inside* it under the command's default file name
  (``--out results/`` -> ``results/outputs.npz``), or is refused when the command has no default name;
* a path that cannot be written (a parent that is a file, no permission, a read-only file system, an
  empty name) is one error naming the flag and the path, never a traceback;
* files are written to a temporary name and renamed, so an interrupted run never leaves half a file
  where a good one was.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from einloom.base.errors import InputError, Location


def _fail(flag: str, path: str | Path, problem: str, hint: str | None = None) -> InputError:
    return InputError(f"cannot write {str(path)!r}: {problem}", location=Location(None, None, flag), hint=hint)


def output_file(path: str | Path, flag: str, *, default_name: str | None = None,
                suffix: str | None = None) -> Path:
    """The file to write for ``flag``'s value ``path``: parents created, a folder resolved to
    ``folder/default_name``.  ``suffix`` (``.npz``) is required of the name when given."""
    text = str(path)
    if not text.strip():
        raise _fail(flag, path, "the path is empty", "give a file name")
    if "\0" in text:
        raise _fail(flag, path, "the path contains a NUL byte")
    target = Path(text)
    if target.is_dir() or text.endswith(os.sep):
        if default_name is None:
            raise _fail(flag, path, "it is a folder", "give a file name inside it")
        target = target / default_name
    if suffix is not None and target.suffix != suffix:
        raise _fail(flag, path, f"the file name must end in {suffix}", f"write e.g. {target.stem or 'out'}{suffix}")
    make_folder(target.parent, flag)
    if target.is_dir():
        raise _fail(flag, target, "it is a folder", "give a file name")
    probe(target, flag)
    return target


def probe(target: Path, flag: str) -> None:
    """Check that ``target`` can be opened for writing now (before any long computation), leaving an
    existing file untouched and no new file behind."""
    existed = target.exists()
    try:
        with open(target, "ab"):
            pass
    except PermissionError:
        raise _fail(flag, target, "permission denied", "choose a writable location") from None
    except OSError as exc:
        raise _fail(flag, target, exc.strerror or str(exc), "choose a writable location") from None
    if not existed:
        try:
            target.unlink()
        except OSError:
            pass


def output_folder(path: str | Path, flag: str) -> Path:
    """A folder to write into for ``flag`` (created with its parents); a file there is refused."""
    text = str(path)
    if not text.strip():
        raise _fail(flag, path, "the path is empty", "give a folder name")
    target = Path(text)
    if target.exists() and not target.is_dir():
        raise _fail(flag, path, "it is a file, and a folder is needed", "give a folder name")
    make_folder(target, flag)
    return target


def make_folder(folder: Path, flag: str) -> None:
    """Create ``folder`` and its parents, or raise one error naming ``flag``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise _fail(flag, folder, "a file is in the way of the folder", "choose another path") from None
    except NotADirectoryError:
        raise _fail(flag, folder, "a part of the path is a file, not a folder", "choose another path") from None
    except PermissionError:
        raise _fail(flag, folder, "permission denied", "choose a writable location") from None
    except OSError as exc:
        raise _fail(flag, folder, exc.strerror or str(exc), "choose a writable location") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise _fail(flag, folder, "the folder is not writable", "choose a writable location")


def write_atomic(path: Path, flag: str, write: Callable[[Path], None]) -> Path:
    """Run ``write(tmp)`` on a temporary file next to ``path``, then rename it to ``path``."""
    try:
        handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix or ".tmp",
                                            dir=path.parent)
    except OSError as exc:
        raise _fail(flag, path, exc.strerror or str(exc), "choose a writable location") from None
    os.close(handle)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise _fail(flag, path, exc.strerror or str(exc), "check free space and permissions") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_text(path: str | Path, text: str, flag: str, *, default_name: str | None = None,
               suffix: str | None = None) -> Path:
    """Write ``text`` to the file ``flag`` names (see :func:`output_file`); returns the path written."""
    target = output_file(path, flag, default_name=default_name, suffix=suffix)
    return write_atomic(target, flag, lambda tmp: tmp.write_text(text))
