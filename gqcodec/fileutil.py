"""Safe output files shared by the CLI, the evaluation commands and the RD tools.

``check_output`` refuses (with one-line messages) outputs that cannot or must
not be written; ``write_atomic`` writes through a temporary file in the target
folder and renames it into place, so a failure never leaves a half-written file
and never destroys the old one.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import click


class UserError(click.ClickException):
    """One line ``gqcodec: error: ...`` on stderr, exit status 1."""

    def show(self, file=None):
        click.echo(f"gqcodec: error: {self.format_message()}", err=True)


def check_output(path, force: bool) -> None:
    """Raise :class:`UserError` when ``path`` is a folder, exists (without ``force``) or cannot be created."""
    if str(path) == "-":
        return
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{path} is a directory; give an output file name")
    if p.exists() and not force:
        raise UserError(f"{path} exists; use --force to overwrite it")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"output folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise UserError(f"output folder {parent} is not writable")


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_atomic(path, payload: bytes | str | Callable[[str], None], force: bool = True) -> None:
    """Write ``payload`` (bytes, text, or a function writing to a given temp path) to ``path`` atomically.

    With ``force=False`` an output that appeared meanwhile is not replaced.
    """
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=str(parent), prefix=f".{p.name}.", suffix=".part")
    try:
        if callable(payload):
            os.close(fd)
            payload(tmp)
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(payload.encode("utf-8") if isinstance(payload, str) else payload)
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, _umask_mode())
        if p.exists() and not force:
            raise UserError(f"{path} exists; use --force to overwrite it")
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
