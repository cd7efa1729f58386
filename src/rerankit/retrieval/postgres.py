"""A first stage in PostgreSQL: passages, pgvector embeddings (HNSW), a tsvector column and BM25 postings.

Where: ``postgresql://USER:PASSWORD@HOST:PORT/DB?table=NAME`` (``table`` defaults to
``rerankit_passages``; ``[a-z_][a-z0-9_]*``, at most 40 characters). Needs ``pip install
'rerankit[postgres]'`` (psycopg 3) and, for embeddings, the pgvector extension on the server.

Tables:

- ``NAME``: ``pos`` (passage order), ``id``, ``title``, ``text``, ``metadata`` (jsonb), ``embedding``
  (``vector(dim)``, an HNSW index with cosine distance; dense indexes only) and ``tsv`` (a
  ``tsvector`` of title and text, GIN-indexed, for SQL users' own full-text queries). The index's
  manifest is the table's comment.
- ``NAME_bm25``: BM25 postings ``(term, pos, weight)``: the weights of ``retrieval.bm25.BM25`` (same
  tokenizer, stemming, stopwords, k1 and b), so ``bm25`` search gives the in-memory index's scores.

A build writes new tables under temporary names (``NAME__b<hex>``), fills and indexes them, then
drops the old ones and renames the new ones inside one transaction: readers see the previous index or
the new one, never half of one, and a build killed at any point leaves the previous index searchable.
Builders of one ``NAME`` take turns (an advisory lock), and each drops what killed builds left.

Search modes: ``bm25`` (the postings, summed per passage in SQL), ``dense`` (pgvector's HNSW, an
approximate search: the ``2k`` nearest by cosine, with ``hnsw.ef_search`` at least 100 and ``2k``,
ranked by inner product as in memory), ``hybrid`` (RRF of the two, as the in-memory index). Embeddings
are stored as the on-disk index stores them (float16 values), so the two give the same scores up to
float32 summation order, and the same top ``k`` except where HNSW misses a passage.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np

from ..encoders import DEFAULT_BI_ENCODER
from ..errors import BackendUnavailableError, DatabaseError, IndexNotFoundError, InvalidInputError
from ..types import Document, DocumentInput, RankedResult, normalize_query
from ..validation import positive_int
from .base import Retriever, prepare_passages
from .bm25 import BM25
from .dense import Embedder, LocalEmbedder, ProgressCallback, embed_in_batches, manifest_embedder
from .hybrid import SearchModes

DEFAULT_TABLE = "rerankit_passages"
FORMAT = "rerankit-postgres-index"
FORMAT_VERSION = 1
_TABLE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,39}$")
_BATCH = 512
NEAR_FACTOR = 2  # dense search fetches this many times k by cosine, then ranks them by inner product
URL_PREFIXES = ("postgresql://", "postgres://")


def is_postgres_url(target: object) -> bool:
    """Whether ``target`` is a ``postgresql://`` (or ``postgres://``) URL rather than a folder."""
    return isinstance(target, str) and target.startswith(URL_PREFIXES)


def parse_url(url: str) -> tuple[str, str]:
    """``(connection URL without the table parameter, table name)``."""
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    table = next((v for k, v in params if k == "table"), DEFAULT_TABLE)
    if not _TABLE_RE.match(table):
        raise InvalidInputError(f"table name {table!r} must match [a-z_][a-z0-9_]* (at most 40 characters)")
    rest = urlencode([(k, v) for k, v in params if k != "table"])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment)), table


def redact(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def connect(url: str):
    """A psycopg connection (autocommit off), or a ``DatabaseError`` that says what to check."""
    try:
        import psycopg
    except ImportError as exc:
        raise BackendUnavailableError("a postgresql:// index needs psycopg: pip install 'rerankit[postgres]'") from exc
    conninfo, _ = parse_url(url)
    try:
        return psycopg.connect(conninfo, connect_timeout=10)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseError(f"cannot connect to {redact(conninfo)}: {first}. Check the URL (user, password, host, "
                            "port, database) and that the PostgreSQL server is running and accepts connections") from exc


def _ensure_vector(conn) -> None:
    import psycopg

    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.Error as exc:
        conn.rollback()
        raise DatabaseError(
            "the pgvector extension is not available on this server "
            f"({str(exc).strip().splitlines()[0]}): install pgvector on the server and run "
            "'CREATE EXTENSION vector' as a superuser, or build a BM25-only index (--no-dense)") from exc


def _vector_text(row: np.ndarray) -> str:
    return "[" + ",".join(repr(float(x)) for x in row) + "]"


def _postings(bm25: BM25) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """``(terms by token id, token id per posting, passage per posting, weight per posting)`` of a BM25 index."""
    model = bm25._model
    terms = [""] * len(model.vocab_dict)
    for term, token in model.vocab_dict.items():
        terms[token] = term
    indptr = np.asarray(model.scores["indptr"])
    token_of = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    return terms, token_of, np.asarray(model.scores["indices"]), np.asarray(model.scores["data"], dtype=np.float32)


def build_postgres_index(
    passages: Sequence[DocumentInput],
    url: str,
    dense: bool = True,
    embed_model: str = DEFAULT_BI_ENCODER,
    *,
    embedder: Embedder | None = None,
    source: str | None = None,
    progress: ProgressCallback | None = None,
) -> str:
    """Build (or atomically rebuild) the index in the table the URL names; returns the URL."""
    from ..version import __version__

    docs = prepare_passages(passages)
    _, table = parse_url(url)
    if dense and embedder is None:
        embedder = LocalEmbedder(embed_model)
    bm25 = BM25().index([d.full_text for d in docs])
    new = f"{table}__b{secrets.token_hex(4)}"
    with connect(url) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (table,))
        conn.commit()
        try:
            _drop_leftovers(conn, table)
            if dense:
                _ensure_vector(conn)
            embedding_info = _write_tables(conn, new, docs, bm25, embedder if dense else None, progress)
            manifest = {
                "format": FORMAT, "format_version": FORMAT_VERSION, "version": new.rsplit("__b", 1)[1],
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "rerankit_version": __version__,
                "source": source, "num_passages": len(docs),
                "bm25": {"k1": bm25.k1, "b": bm25.b, "language": bm25.language},
                "dense": embedding_info is not None, "embedding": embedding_info,
            }
            _swap(conn, table, new, manifest)
        finally:
            conn.rollback()
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (table,))
            conn.commit()
    return url


def _drop_leftovers(conn, table: str) -> None:
    """Drop the temporary tables of builds that were killed (builders hold the lock, so none is running)."""
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE %s",
                        (f"{table}\\_\\_b%",)).fetchall()
    for (name,) in rows:
        conn.execute(f'DROP TABLE IF EXISTS "{name}"')
    conn.commit()


def _write_tables(conn, new: str, docs: list[Document], bm25: BM25, embedder: Embedder | None,
                  progress: ProgressCallback | None) -> dict | None:
    """Create and fill ``new`` and ``new_bm25``, committed but not yet live; the embedding's description."""
    info = None
    dim = None
    conn.execute(f'CREATE TABLE "{new}_bm25" (term text NOT NULL, pos integer NOT NULL, weight real NOT NULL)')
    conn.execute(f'CREATE TABLE "{new}" (pos integer PRIMARY KEY, id text NOT NULL UNIQUE, title text NOT NULL, '
                 'text text NOT NULL, metadata jsonb NOT NULL, '
                 "tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', title || ' ' || text)) STORED)")
    conn.commit()  # the tables exist from here on: a killed build leaves them to the next build's cleanup
    for start in range(0, len(docs), _BATCH):
        batch = docs[start : start + _BATCH]
        vectors = None
        if embedder is not None:
            vectors = embed_in_batches(embedder, [d.full_text for d in batch]).astype(np.float16).astype(np.float32)
            if dim is None:
                dim = int(vectors.shape[1])
                conn.execute(f'ALTER TABLE "{new}" ADD COLUMN embedding vector({dim})')
                info = {"provider": embedder.provider, "model": embedder.model, "dim": dim, "dtype": "float16"}
        columns = "pos, id, title, text, metadata" + (", embedding" if vectors is not None else "")
        with conn.cursor().copy(f'COPY "{new}" ({columns}) FROM STDIN') as copy:
            for i, doc in enumerate(batch):
                row = [start + i, doc.id, doc.title, doc.text, json.dumps(dict(doc.metadata), ensure_ascii=False)]
                if vectors is not None:
                    row.append(_vector_text(vectors[i]))
                copy.write_row(row)
        conn.commit()
        if progress is not None and embedder is not None:
            progress(min(start + _BATCH, len(docs)), len(docs))
    terms, token_of, positions, weights = _postings(bm25)
    with conn.cursor().copy(f'COPY "{new}_bm25" (term, pos, weight) FROM STDIN') as copy:
        for token, pos, weight in zip(token_of.tolist(), positions.tolist(), weights.tolist()):
            copy.write_row((terms[token], pos, weight))
    conn.execute(f'CREATE INDEX "{new}_bm25_term" ON "{new}_bm25" (term)')
    conn.execute(f'CREATE INDEX "{new}_tsv" ON "{new}" USING gin (tsv)')
    if dim is not None:  # pgvector builds HNSW much faster when the graph fits in maintenance_work_mem
        conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
        conn.execute(f'CREATE INDEX "{new}_hnsw" ON "{new}" USING hnsw (embedding vector_cosine_ops)')
    conn.execute(f'ANALYZE "{new}"')
    conn.execute(f'ANALYZE "{new}_bm25"')
    conn.commit()
    return info


def _swap(conn, table: str, new: str, manifest: dict) -> None:
    """Drop the live tables and rename the new ones into their place, in one transaction."""
    conn.execute(f'DROP TABLE IF EXISTS "{table}_bm25"')
    conn.execute(f'DROP TABLE IF EXISTS "{table}"')
    conn.execute(f'ALTER TABLE "{new}_bm25" RENAME TO "{table}_bm25"')
    conn.execute(f'ALTER TABLE "{new}" RENAME TO "{table}"')
    conn.execute(f'COMMENT ON TABLE "{table}" IS {_literal(json.dumps(manifest))}')
    conn.commit()


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def read_postgres_manifest(url: str, conn=None) -> dict[str, Any]:
    """The live index's manifest (the table's comment); ``IndexNotFoundError`` if there is none."""
    _, table = parse_url(url)
    own = conn is None
    conn = conn or connect(url)
    try:
        row = conn.execute("SELECT obj_description(to_regclass(%s), 'pg_class')", (f'"{table}"',)).fetchone()
        conn.rollback()
    finally:
        if own:
            conn.close()
    try:
        manifest = json.loads(row[0]) if row and row[0] else None
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexNotFoundError(f"no rerankit index in table {table!r} at {redact(parse_url(url)[0])}: build one "
                                 "with 'rerankit index build CORPUS --out postgresql://...'")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexNotFoundError(f"table {table!r} holds index format {manifest.get('format_version')!r}; this "
                                 f"rerankit reads {FORMAT_VERSION}: rebuild it")
    return manifest


class _Connection:
    """One connection shared by a loaded index's retrievers, one query at a time, reopened if it drops."""

    def __init__(self, url: str) -> None:
        self.url, self.lock, self.conn = url, threading.Lock(), connect(url)

    def fetch(self, sql: str, params: Sequence[Any], ef_search: int | None = None) -> list[tuple]:
        import psycopg

        with self.lock:
            for attempt in (0, 1):
                try:
                    if self.conn.closed:
                        self.conn = connect(self.url)
                    if ef_search is not None:
                        self.conn.execute(f"SET LOCAL hnsw.ef_search = {int(ef_search)}")
                    rows = self.conn.execute(sql, params).fetchall()
                    self.conn.rollback()  # read-only: end the transaction, so a rebuild's swap is not blocked
                    return rows
                except psycopg.OperationalError as exc:
                    if attempt:
                        raise DatabaseError(f"lost the connection to {redact(self.url)}: {exc}") from exc
                    self.conn.close()
                except psycopg.Error as exc:
                    self.conn.rollback()
                    raise DatabaseError(f"query failed on {redact(self.url)}: {str(exc).strip()}") from exc
        raise AssertionError("unreachable")


def _document(row: tuple) -> Document:
    _, doc_id, title, text, metadata = row[:5]
    return Document(text=text, title=title, id=doc_id, metadata=metadata or {})


class PostgresBM25Retriever:
    """BM25 over the postings table (see the module docstring); passages with no query term are left out."""

    def __init__(self, connection: _Connection, table: str, bm25: BM25) -> None:
        self.connection, self.table, self.bm25 = connection, table, bm25

    def search(self, query: str, k: int) -> list[RankedResult]:
        query, k = normalize_query(query), positive_int(k, "k")
        terms = self.bm25.query_terms(query)
        if not terms:
            return []
        rows = self.connection.fetch(
            f'WITH q AS (SELECT term, count(*) AS n FROM unnest(%s::text[]) AS term GROUP BY term), '
            f'top AS (SELECT p.pos, sum(p.weight * q.n)::real AS score FROM "{self.table}_bm25" p JOIN q USING (term) '
            f'GROUP BY p.pos ORDER BY score DESC, p.pos LIMIT %s) '
            f'SELECT t.pos, t.id, t.title, t.text, t.metadata, top.score FROM top JOIN "{self.table}" t USING (pos) '
            f'ORDER BY top.score DESC, t.pos', (terms, k))
        return [RankedResult(int(r[0]), float(r[5]), _document(r), rank) for rank, r in enumerate(rows) if r[5] > 0]


class PostgresDenseRetriever:
    """The in-memory index's score (the inner product of the stored float16 values and the query) over the
    ``NEAR_FACTOR * k`` nearest by pgvector's HNSW cosine index (approximate; ``ef_search`` at least 100 and
    that count), best first, ties by position: the float16 rows are not unit length, so their cosine order
    and inner product order may differ by near-ties, which the wider fetch and the re-sort settle."""

    def __init__(self, connection: _Connection, table: str, embedder: Embedder) -> None:
        self.connection, self.table, self.embedder = connection, table, embedder

    def search(self, query: str, k: int) -> list[RankedResult]:
        query, k = normalize_query(query), positive_int(k, "k")
        vector = _vector_text(self.embedder.embed([query])[0])
        rows = self.connection.fetch(
            f'SELECT * FROM (SELECT pos, id, title, text, metadata, (-(embedding <#> %s::vector))::real AS score '
            f'FROM "{self.table}" ORDER BY embedding <=> %s::vector LIMIT %s) AS near '
            f'ORDER BY score DESC, pos LIMIT %s', (vector, vector, NEAR_FACTOR * k, k),
            ef_search=max(100, NEAR_FACTOR * k))
        return [RankedResult(int(r[0]), float(r[5]), _document(r), rank) for rank, r in enumerate(rows)]


class PostgresIndex(SearchModes):
    """A rerankit index in PostgreSQL: ``search`` and ``retriever`` as ``retrieval.Index`` has them."""

    def __init__(self, url: str, embedder: Embedder | None = None) -> None:
        self.url = url
        self.table = parse_url(url)[1]
        self.connection = _Connection(url)
        self.manifest = read_postgres_manifest(url, self.connection.conn)
        settings = self.manifest.get("bm25") or {}
        self.bm25 = BM25(k1=settings.get("k1", 0.9), b=settings.get("b", 0.4), language=settings.get("language", "english"))
        self._embedder = embedder
        self._retrievers: dict[str, Retriever] = {}

    def __len__(self) -> int:
        return int(self.manifest["num_passages"])

    def _bm25_retriever(self) -> Retriever:
        return PostgresBM25Retriever(self.connection, self.table, self.bm25)

    def _dense_retriever(self) -> Retriever:
        if not self.has_dense:
            raise InvalidInputError(f"the index in table {self.table!r} has no embeddings; use mode 'bm25'")
        if self._embedder is None:
            self._embedder = manifest_embedder(self.manifest, f"table {self.table!r}")
        return PostgresDenseRetriever(self.connection, self.table, self._embedder)

    def close(self) -> None:
        self.connection.conn.close()

    def __repr__(self) -> str:
        return (f"PostgresIndex(url={redact(parse_url(self.url)[0])!r}, table={self.table!r}, "
                f"version={self.version!r}, passages={len(self)}, dense={self.has_dense})")
