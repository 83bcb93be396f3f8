"""Receipts: what a record may ask the connector to read, and the one way it is read.

Records come from third-party sources, so a record never chooses a file on the connector's disk:
- inline `content` (base64) is always accepted;
- a `path` is only a name *inside* the operator's `receipts_root`: relative, no `..`, no symlink
  leading out of the root, a regular non-empty file of at most `MAX_RECEIPT_BYTES`.

`resolve_receipt_path` is the only function that turns a record's path into a file; it decides
when a record is accepted and again when the file is read for upload (`read_receipt`), which
also checks that the file it opened is the very file that was checked (the path may have
changed in between). Any future file reference from a record goes through it too.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from destination_codat_expenses.values import FieldProblem

# The largest attachment QuickBooks Online and NetSuite take (docs: "100 MB"). Smaller platform
# limits (Xero 10 MB, FreeAgent 5 MB) are Codat's to enforce: such an upload is recorded failed.
MAX_MIB = 100
MAX_RECEIPT_BYTES = MAX_MIB * 1024 * 1024
MAX_FILE_NAME, MAX_PATH = 255, 4096
PSEUDO_FILE_SYSTEMS = (Path("/proc"), Path("/sys"), Path("/dev"))
NOT_IN_FILE_NAMES = frozenset('/\\"')  # besides anything str.isprintable() refuses


@dataclass(frozen=True)
class Receipt:
    """A record's receipt as accepted: a safe file name and either a path or base64 content."""

    file_name: str
    path: str | None = None
    content_base64: str | None = None


@dataclass(frozen=True)
class ReceiptFile:
    """A receipt path that passed every check: the real file, its size and its identity."""

    path: Path
    size: int
    identity: tuple[int, int]  # (st_dev, st_ino): the file itself, whatever path leads to it


class ReceiptProblem(FieldProblem):
    """Why a receipt was refused; `part` is the receipt's sub-field (path, fileName, content)."""

    def __init__(self, part: str | None, reason: str) -> None:
        super().__init__(reason)
        self.part = part


# -- accepting a record's receipt (pure: no file is touched here) ---------------------------------
def receipt_of(value: Any) -> Receipt:
    if not isinstance(value, dict):
        raise ReceiptProblem(None, "must be an object with fileName and either path or content")
    path, content = value.get("path"), value.get("content")
    if (path is None) == (content is None):
        raise ReceiptProblem(None, "needs a fileName and exactly one of path or content (base64)")
    name = checked_file_name(value.get("fileName") or value.get("file_name"))
    if content is not None:
        inline_bytes(content)
        return Receipt(name, content_base64=content)
    if not isinstance(path, str) or not path.strip():
        raise ReceiptProblem("path", "must be a file name relative to the receipts folder")
    return Receipt(name, path=path)


def checked_file_name(value: Any) -> str:
    """A plain file name: it travels in a multipart header and may become a file at the other
    end, so no path separators, quotes, control or bidi-override characters."""
    if not isinstance(value, str) or not value.strip():
        raise ReceiptProblem("fileName", "is required: the receipt's file name, e.g. 'taxi.pdf'")
    name = unicodedata.normalize("NFC", value).strip()
    if len(name) > MAX_FILE_NAME:
        raise ReceiptProblem("fileName", f"is {len(name)} characters; the limit is 255")
    if name in (".", "..") or any(c in NOT_IN_FILE_NAMES or not c.isprintable() for c in name):
        raise ReceiptProblem(
            "fileName",
            "must be a plain file name: no '/', '\\', '\"', control or direction characters",
        )
    return name


def inline_bytes(content: Any) -> bytes:
    if not isinstance(content, str):
        raise ReceiptProblem("content", "must be the file's bytes as a base64 string")
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise ReceiptProblem("content", "is not valid base64") from None


# -- the one way a receipt path becomes a file ----------------------------------------------------
def resolve_receipt_path(root: str | Path | None, relative: Any) -> ReceiptFile:
    """The regular file `relative` names inside `root`, or ReceiptProblem("path", why not)."""
    real_root = checked_root(root)
    parts = relative_parts(relative)
    try:
        real = real_root.joinpath(*parts).resolve(strict=True)
    except FileNotFoundError:
        raise ReceiptProblem("path", "names no file in the receipts folder") from None
    except (OSError, RuntimeError):
        raise ReceiptProblem("path", "cannot be resolved in the receipts folder") from None
    if not real.is_relative_to(real_root) or on_pseudo_file_system(real):
        raise ReceiptProblem("path", "leads outside the receipts folder (through a symlink)")
    try:
        status = os.stat(real)
    except OSError:
        raise ReceiptProblem("path", "names no file in the receipts folder") from None
    return checked_file(real, status)


def checked_root(root: str | Path | None) -> Path:
    if root is None:
        raise ReceiptProblem(
            "path",
            "is not allowed: no receipts_root is configured, so receipts must come inline "
            "as base64 'content' (an operator may set receipts_root to allow files)",
        )
    try:
        real_root = Path(root).resolve(strict=True)
    except (OSError, RuntimeError):
        real_root = None
    if real_root is None or not real_root.is_dir():
        raise ReceiptProblem("path", "cannot be read: receipts_root is no longer a folder")
    return real_root


def relative_parts(relative: Any) -> tuple[str, ...]:
    if not isinstance(relative, str) or not relative.strip():
        raise ReceiptProblem("path", "must be a file name relative to the receipts folder")
    if "\x00" in relative or len(relative) > MAX_PATH:
        raise ReceiptProblem("path", "is not a usable file name")
    pure = PurePosixPath(relative)
    if pure.is_absolute():
        raise ReceiptProblem("path", "must be relative to the receipts folder, not absolute")
    if ".." in pure.parts:
        raise ReceiptProblem("path", "must not contain '..'")
    return pure.parts


def checked_file(real: Path, status: os.stat_result) -> ReceiptFile:
    if not stat.S_ISREG(status.st_mode):
        raise ReceiptProblem("path", "is not a regular file (a folder, device, FIFO or socket)")
    if status.st_size == 0:
        raise ReceiptProblem("path", "names an empty file")
    if status.st_size > MAX_RECEIPT_BYTES:
        raise ReceiptProblem(
            "path", f"names a file of {status.st_size} bytes; receipts are limited to {MAX_MIB} MiB"
        )
    return ReceiptFile(real, status.st_size, (status.st_dev, status.st_ino))


def on_pseudo_file_system(real: Path) -> bool:
    return any(real.is_relative_to(top) for top in PSEUDO_FILE_SYSTEMS)


# -- reading, at upload time ----------------------------------------------------------------------
def read_receipt(receipt: Receipt, root: str | Path | None) -> bytes:
    """The receipt's bytes, every check made again now: the file may have changed since the
    record was accepted, and receipts stored by an older version were never checked."""
    checked_file_name(receipt.file_name)
    if receipt.content_base64 is not None:
        return inline_bytes(receipt.content_base64)
    checked = resolve_receipt_path(root, receipt.path)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        descriptor = os.open(checked.path, flags)
    except OSError:
        raise ReceiptProblem("path", "changed while it was being opened") from None
    with os.fdopen(descriptor, "rb") as file:
        status = os.fstat(file.fileno())
        if (status.st_dev, status.st_ino) != checked.identity:
            raise ReceiptProblem("path", "changed while it was being opened")
        checked_file(checked.path, status)
        content = file.read(MAX_RECEIPT_BYTES + 1)
    if not content or len(content) > MAX_RECEIPT_BYTES:
        raise ReceiptProblem("path", "changed size while it was being read")
    return content


def why_unread(error: Exception) -> str:
    """The attachment's message when a receipt is not uploaded: which part, and why."""
    part = getattr(error, "part", None)
    return f"receipt.{part} {error}" if part else str(error)
