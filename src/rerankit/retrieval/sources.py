"""Passages to index from a BEIR ``corpus.jsonl``, a one-passage-per-line text file, or a folder of notes."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..datasets import read_corpus_jsonl
from ..errors import DataFormatError, InvalidInputError
from ..types import Document
from ..validation import positive_int

FOLDER_SUFFIXES = (".txt", ".md")
LINE_FILE_SUFFIXES = (".txt", ".text")


def word_windows(words: list[str], size: int, overlap: int) -> list[tuple[int, list[str]]]:
    """Windows of ``size`` words that overlap by ``overlap``, as ``(start, words)``; the last reaches the end."""
    windows, start, step = [], 0, size - overlap
    while True:
        windows.append((start, words[start : start + size]))
        if start + size >= len(words):
            return windows
        start += step


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataFormatError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        raise DataFormatError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _read_lines(path: Path) -> list[Document]:
    """One passage per non-blank line; the id is the 1-based line number."""
    return [
        Document(text=line.strip(), id=str(lineno))
        for lineno, line in enumerate(_read_text(path).splitlines(), start=1)
        if line.strip()
    ]


def _chunk_file(path: Path, doc_id: str, size: int, overlap: int) -> list[Document]:
    words = _read_text(path).split()
    if not words:
        return []
    return [
        Document(
            text=" ".join(window),
            title=path.name,
            id=f"{doc_id}#{i}",
            metadata={"source": doc_id, "chunk": i, "start_word": start},
        )
        for i, (start, window) in enumerate(word_windows(words, size, overlap))
    ]


def _folder_files(folder: Path) -> Iterable[Path]:
    """Every .txt/.md file below ``folder``, sorted by relative path; hidden files and folders are skipped."""
    files = [
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in FOLDER_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def load_passages(source: str | Path, chunk_words: int = 200, overlap_words: int = 50) -> list[Document]:
    """Read the passages to index from ``source``; every passage gets a unique ``id``.

    - ``*.jsonl``: a BEIR corpus (``{"_id", "title"?, "text"}`` per line).
    - ``*.txt`` (or ``.text``): one passage per non-blank line, ids ``"1"``, ``"2"``, ... (line numbers).
    - ``*.md``: one note, split like a folder's files.
    - a folder: every ``.txt``/``.md`` file below it (sorted; hidden ones skipped), split into windows of
      ``chunk_words`` words overlapping by ``overlap_words``; ids ``"sub/file.md#0"``, ``"#1"``, ...;
      the title is the file name.
    """
    positive_int(chunk_words, "chunk_words")
    if positive_int(overlap_words, "overlap_words", minimum=0) >= chunk_words:
        raise InvalidInputError(
            f"overlap_words must be an integer in [0, chunk_words={chunk_words}), got {overlap_words!r}"
        )
    path = Path(source).expanduser()
    if not path.exists():
        raise InvalidInputError(f"source not found: {path}")
    if path.is_dir():
        docs: list[Document] = []
        for file in _folder_files(path):
            docs.extend(_chunk_file(file, file.relative_to(path).as_posix(), chunk_words, overlap_words))
        if not docs:
            raise DataFormatError(f"{path}: no non-empty {'/'.join(FOLDER_SUFFIXES)} files in this folder")
        return docs
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        docs = read_corpus_jsonl(path)
    elif suffix in LINE_FILE_SUFFIXES:
        docs = _read_lines(path)
    elif suffix == ".md":
        docs = _chunk_file(path, path.name, chunk_words, overlap_words)
    else:
        raise InvalidInputError(
            f"unsupported source {path}: expected a .jsonl corpus, a .txt file with one passage per line, "
            "a .md file, or a folder"
        )
    if not docs:
        raise DataFormatError(f"{path}: no passages (the file is empty)")
    return docs
