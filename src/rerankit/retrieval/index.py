"""A persistent first-stage index on disk (passages, BM25, embeddings), rebuilt atomically.

Layout of an index folder ``DIR``::

    DIR/CURRENT                   name of the live version (one line), replaced atomically
    DIR/versions/<id>/            one complete, immutable version:
        passages.jsonl            {"_id", "title", "text", "metadata"?} per line
        bm25/                     BM25.save()
        embeddings.npy            float16, one L2-normalized row per passage (dense indexes only)
        manifest.json             written last: format version, counts, embedding model, created time
    DIR/versions/.staging-<id>/   a version being built (never loaded; removed by the next build)
    DIR/.lock                     serializes builders (flock)

A build writes a whole new version into a staging folder beside the others (same filesystem), fsyncs
every file and folder, renames it to ``versions/<id>`` (atomic), then replaces ``CURRENT`` (write a temp
file, fsync, ``os.replace``, fsync ``DIR``) — that single replace is the switch. Old versions and crash
leftovers are deleted only after it. Readers follow ``CURRENT`` only, so a crash or SIGKILL at any moment
leaves the previous version live and complete, and a half-written one is never seen.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..encoders import DEFAULT_BI_ENCODER
from ..errors import IndexNotFoundError, InvalidInputError
from ..io import atomic_write_text, fsync_dir, fsync_tree, read_jsonl
from ..types import Document, DocumentInput
from .base import Retriever, prepare_passages
from .bm25 import BM25, BM25Retriever
from .dense import DenseRetriever, Embedder, LocalEmbedder, ProgressCallback, embed_in_batches, manifest_embedder
from .hybrid import SearchModes
from .postgres import PostgresIndex, build_postgres_index, is_postgres_url, read_postgres_manifest

FORMAT = "rerankit-index"
FORMAT_VERSION = 1
CURRENT_FILE, VERSIONS_DIR, LOCK_FILE = "CURRENT", "versions", ".lock"
STAGING_PREFIX = ".staging-"
PASSAGES_FILE, BM25_DIR, EMBEDDINGS_FILE, MANIFEST_FILE = "passages.jsonl", "bm25", "embeddings.npy", "manifest.json"
_VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]*$")


# ---------------------------------------------------------------- writing


@contextmanager
def _build_lock(root: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``root/.lock`` so two builders never collect each other's files."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no locking
        yield
        return
    with open(root / LOCK_FILE, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _read_current(root: Path) -> str | None:
    try:
        return (root / CURRENT_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):  # unreadable or not text: no index here
        return None


def _collect_garbage(root: Path) -> None:
    """Delete every version but the live one, staging folders and temp files left by crashed builds.

    Call only while holding the build lock.
    """
    current = _read_current(root)
    for entry in (root / VERSIONS_DIR).iterdir():
        if entry.name == current:
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    for leftover in root.glob(f".{CURRENT_FILE}.*.tmp"):  # atomic_write_text's temp files
        leftover.unlink(missing_ok=True)


def _check_target(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise InvalidInputError(f"index output {root} exists and is not a folder")
    if root.is_dir() and any(root.iterdir()):
        if not (root / VERSIONS_DIR).is_dir() and not (root / CURRENT_FILE).exists():
            raise InvalidInputError(f"{root} is a non-empty folder that is not a rerankit index; refusing to write into it")


def _write_passages(path: Path, docs: Sequence[Document]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for doc in docs:
            record: dict[str, Any] = {"_id": doc.id, "title": doc.title, "text": doc.text}
            if doc.metadata:
                record["metadata"] = dict(doc.metadata)
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")


def _new_version_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + f"-{secrets.token_hex(4)}"


def build_index(
    passages: Sequence[DocumentInput],
    out_dir: str | Path,
    dense: bool = True,
    embed_model: str = DEFAULT_BI_ENCODER,
    *,
    embedder: Embedder | None = None,
    source: str | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Build (or atomically rebuild) the index in ``out_dir`` and return its path.

    ``dense`` adds embeddings from ``embedder`` (default: local ``embed_model``); ``source`` is recorded
    in the manifest; ``progress(done, total)`` is called while embedding.
    """
    from ..version import __version__

    if is_postgres_url(out_dir):
        return build_postgres_index(passages, str(out_dir), dense, embed_model, embedder=embedder,  # type: ignore[return-value]
                                    source=source, progress=progress)
    docs = prepare_passages(passages)
    root = Path(out_dir).expanduser()
    _check_target(root)
    (root / VERSIONS_DIR).mkdir(parents=True, exist_ok=True)
    if dense and embedder is None:
        embedder = LocalEmbedder(embed_model)
    with _build_lock(root):
        _collect_garbage(root)
        version = _new_version_id()
        staging = root / VERSIONS_DIR / f"{STAGING_PREFIX}{version}"
        final = root / VERSIONS_DIR / version
        staging.mkdir()
        try:
            _write_passages(staging / PASSAGES_FILE, docs)
            bm25 = BM25().index([d.full_text for d in docs])
            bm25.save(staging / BM25_DIR)
            embedding_info = None
            if dense:
                assert embedder is not None
                vectors = embed_in_batches(embedder, [d.full_text for d in docs], progress=progress)
                with (staging / EMBEDDINGS_FILE).open("wb") as handle:
                    np.save(handle, vectors.astype(np.float16))
                embedding_info = {
                    "provider": embedder.provider, "model": embedder.model,
                    "dim": int(vectors.shape[1]), "dtype": "float16",
                }
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "version": version,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "rerankit_version": __version__,
                "source": source,
                "num_passages": len(docs),
                "bm25": {"k1": bm25.k1, "b": bm25.b, "language": bm25.language},
                "dense": embedding_info is not None,
                "embedding": embedding_info,
            }
            (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
            fsync_tree(staging)
            os.rename(staging, final)
            fsync_dir(root / VERSIONS_DIR)
            atomic_write_text(root / CURRENT_FILE, version + "\n")  # the switch
            fsync_dir(root)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if final.exists() and _read_current(root) != version:
                shutil.rmtree(final, ignore_errors=True)
            raise
        _collect_garbage(root)
    return root


# ---------------------------------------------------------------- reading


def read_manifest(index_dir: str | Path) -> dict[str, Any]:
    """The live version's manifest; ``IndexNotFoundError`` if there is none or its format is unknown."""
    if is_postgres_url(index_dir):
        return read_postgres_manifest(str(index_dir))
    root = Path(index_dir).expanduser()
    if not root.is_dir():
        raise IndexNotFoundError(f"no index at {root}: folder not found")
    version = _read_current(root)
    if version is None:
        raise IndexNotFoundError(
            f"no index at {root}: it has no {CURRENT_FILE} file (not an index, or its first build never finished)"
        )
    if not _VERSION_RE.match(version):
        raise IndexNotFoundError(f"index at {root} is corrupt: {CURRENT_FILE} names {version!r}")
    path = root / VERSIONS_DIR / version / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexNotFoundError(f"index at {root} is incomplete: cannot read {path.relative_to(root)}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexNotFoundError(f"index at {root}: {path.relative_to(root)} is not a rerankit index manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexNotFoundError(
            f"index at {root} has format version {manifest.get('format_version')!r}; this rerankit reads "
            f"version {FORMAT_VERSION}: rebuild it with 'rerankit index build'"
        )
    return manifest


class Index(SearchModes):
    """A loaded index: its ``documents``, BM25 and (optionally) embeddings; ``search`` in three modes."""

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any],
        documents: list[Document],
        bm25: BM25,
        embeddings: np.ndarray | None,
        embedder: Embedder | None = None,
    ) -> None:
        self.path, self.manifest, self.documents = path, manifest, documents
        self.bm25, self.embeddings, self._embedder = bm25, embeddings, embedder
        self._retrievers: dict[str, Retriever] = {}

    def __len__(self) -> int:
        return len(self.documents)

    def _bm25_retriever(self) -> Retriever:
        return BM25Retriever(self.bm25, self.documents)

    def _dense_retriever(self) -> Retriever:
        if self.embeddings is None:
            raise InvalidInputError(f"index {self.path} has no embeddings (built with --no-dense); use mode 'bm25'")
        if self._embedder is None:
            self._embedder = manifest_embedder(self.manifest, f"index {self.path}")
        return DenseRetriever(self.documents, self.embeddings, self._embedder)

    def __repr__(self) -> str:
        return f"Index(path={str(self.path)!r}, version={self.version!r}, passages={len(self)}, dense={self.has_dense})"


def _read_passages(path: Path) -> list[Document]:
    return [
        Document(text=obj["text"], title=obj.get("title") or "", id=str(obj["_id"]), metadata=obj.get("metadata") or {})
        for _, obj in read_jsonl(path)
    ]


def _load_version(root: Path, embedder: Embedder | None) -> Index:
    manifest = read_manifest(root)
    folder = root / VERSIONS_DIR / str(manifest["version"])
    count = manifest.get("num_passages")
    try:
        documents = _read_passages(folder / PASSAGES_FILE)
        bm25 = BM25.load(folder / BM25_DIR, language=manifest.get("bm25", {}).get("language", "english"))
        embeddings = None
        if manifest.get("dense"):
            embeddings = np.load(folder / EMBEDDINGS_FILE, allow_pickle=False).astype(np.float32)
    except Exception as exc:  # missing/truncated files, whatever the parser raises
        raise IndexNotFoundError(f"index at {root} is incomplete or damaged ({type(exc).__name__}: {exc})") from exc
    shapes_ok = len(documents) == count and len(bm25) == count
    if embeddings is not None:
        shapes_ok = shapes_ok and embeddings.ndim == 2 and embeddings.shape[0] == count
    if not shapes_ok:
        raise IndexNotFoundError(f"index at {root} is inconsistent: its files do not hold {count} passages each")
    return Index(root, manifest, documents, bm25, embeddings, embedder)


def load_index(index_dir: str | Path, embedder: Embedder | None = None) -> Index:
    """Load the live version of the index in ``index_dir`` into memory.

    Raises ``IndexNotFoundError`` when the folder is missing, holds no finished index, or one of an
    unknown format version. ``embedder`` is needed only for indexes embedded by a remote service.
    A ``postgresql://`` URL loads a ``postgres.PostgresIndex`` (searched in the database).
    """
    if is_postgres_url(index_dir):
        return PostgresIndex(str(index_dir), embedder)  # type: ignore[return-value]
    root = Path(index_dir).expanduser()
    for _ in range(5):
        version = _read_current(root)
        try:
            return _load_version(root, embedder)
        except IndexNotFoundError:
            # A rebuild may have switched versions and deleted ours while we read it: follow CURRENT again.
            if version is None or _read_current(root) == version:
                raise
    return _load_version(root, embedder)
