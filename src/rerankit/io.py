"""File helpers: jsonl reading with line numbers, and atomic writes."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .errors import DataFormatError


def read_text_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, line)`` of a UTF-8 text file (a leading byte-order mark is dropped);
    a file that cannot be opened or is not UTF-8 raises ``DataFormatError`` naming the line."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise DataFormatError(f"cannot open {path}: {exc.strerror or exc}") from exc
    with handle:
        try:
            for lineno, raw in enumerate(handle, start=1):  # decoded line by line, so an error names its line
                try:
                    line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    raise DataFormatError(f"{path}:{lineno}: not UTF-8 text ({exc.reason})") from exc
                yield lineno, line
        except OSError as exc:
            raise DataFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line; a bad line raises ``DataFormatError``."""
    for lineno, line in read_text_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:  # JSONDecodeError, or an integer too long to convert
            raise DataFormatError(f"{path}:{lineno}: invalid JSON ({getattr(exc, 'msg', exc)})") from exc
        if not isinstance(obj, dict):
            raise DataFormatError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
        if "\\u" in line and _has_lone_surrogate(obj):  # only a \uXXXX escape can make one
            raise DataFormatError(f"{path}:{lineno}: a \\uXXXX escape encodes half of a character (a lone surrogate)")
        yield lineno, obj


def _has_lone_surrogate(obj: Any) -> bool:
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def file_mode_for(path: Path) -> int:
    """The mode ``path`` keeps (an existing file's), else what ``open()`` would give a new file."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        pass
    umask = 0o022
    try:  # read the umask without changing it (os.umask sets it, which races with other threads)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                umask = int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o666 & ~umask


def fsync_dir(folder: str | Path) -> None:
    """fsync a folder, so that the entries renamed into it survive a crash (a no-op where folders cannot
    be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def fsync_tree(folder: str | Path) -> None:
    """fsync every file below ``folder``, then every folder bottom-up (so the entries are durable too)."""
    for dirpath, _, filenames in os.walk(folder, topdown=False):
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as handle:
                os.fsync(handle.fileno())
        fsync_dir(dirpath)


def write_atomically(path: str | Path, produce: Callable[[Path], None]) -> Path:
    """Call ``produce(tmp)`` to write a temporary file beside ``path``, then fsync it, rename it over ``path``
    and fsync the folder: a reader sees the old file or the whole new one, never a part, and a crash leaves
    at most a ``.NAME.*.tmp`` file. The file gets the mode a plain ``open(path, "w")`` would give it (an
    existing file keeps its own), not the owner-only mode of the temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        produce(tmp)
        os.chmod(tmp, file_mode_for(path))
        with tmp.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """``data`` written to ``path`` atomically (``write_atomically``)."""
    write_atomically(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def _exchange_paths(a: Path, b: Path) -> bool:
    """Swap two paths in one step with Linux ``renameat2(RENAME_EXCHANGE)``; False where unsupported."""
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def publish_directory(staged: str | Path, target: str | Path) -> Path:
    """Move a fully written folder ``staged`` to ``target``, replacing any old one.

    On Linux the two folders are exchanged in one atomic step, so ``target`` always holds a
    complete folder, old or new. Elsewhere the old folder is renamed aside first and deleted only
    after the switch: a crash in between leaves it complete as ``target.old-*``.
    """
    import shutil
    import time

    staged, target = Path(staged), Path(target)
    if not target.exists():
        os.rename(staged, target)
        return target
    if _exchange_paths(staged, target):
        shutil.rmtree(staged, ignore_errors=True)  # now holds the old folder
        return target
    aside = target.with_name(f"{target.name}.old-{os.getpid()}-{time.time_ns()}")
    os.rename(target, aside)
    os.rename(staged, target)
    shutil.rmtree(aside, ignore_errors=True)
    return target
