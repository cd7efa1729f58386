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


def _load_bi_encoder(arg: str = "", **kwargs) -> Reranker:
    from .bi_encoder import BiEncoderReranker

    return BiEncoderReranker(arg or "all-MiniLM-L6-v2", **kwargs)


def _load_engine(arg: str, **kwargs) -> Reranker:
    """``engine:FOLDER`` (or ``engine:default``): the model on a fast engine backend (``backend="auto"`` unless given)."""
    kwargs.setdefault("backend", "auto")
    if not arg or arg == "default":
        return _load_default("", **kwargs)
    if (Path(arg).expanduser() / "rerankit.json").is_file():
        return _load_folder(arg, **kwargs)
    from ..engine import EngineReranker

    return EngineReranker(arg, **kwargs)


def _load_cross_encoder(arg: str, **kwargs) -> Reranker:
    from .cross_encoder import CrossEncoderReranker

    if not arg:
        raise UnknownSpecError("'cross-encoder:' needs a folder or hub name after the colon")
    return CrossEncoderReranker(arg, **kwargs)


register("default", _load_default)
register("bi-encoder", _load_bi_encoder)
register("cross-encoder", _load_cross_encoder)
register("hf", _load_cross_encoder)
register("engine", _load_engine)


def load_reranker(spec: str = "default", **kwargs) -> Reranker:
    """Build a reranker from a spec.

    - ``default``: the cross-encoder shipped with rerankit (calibrated probabilities).
    - ``bi-encoder[:MODEL]``: cosine of sentence-transformers embeddings (all-MiniLM-L6-v2 by default).
    - ``cross-encoder:NAME`` / ``hf:NAME``, a local Hugging Face folder, or a hub name such as
      ``cross-encoder/ms-marco-MiniLM-L-6-v2``: a cross-encoder run with torch.
    - ``engine:FOLDER`` / ``engine:default``: the same models on ``rerankit.engine`` (ONNX Runtime
      int8/fp32 or bf16, token-budget batching, long-document windows); ``backend="auto"`` by default.
      Any folder or ``default`` also takes ``backend=...`` as a keyword.
    - ``PREFIX:ARG`` for any backend added with ``register``.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise UnknownSpecError("reranker spec must be a non-empty string")
    spec = spec.strip()
    prefix, sep, arg = spec.partition(":")
    if prefix in _FACTORIES and (sep or prefix in ("default", "bi-encoder")):
        return _FACTORIES[prefix](arg, **kwargs)
    if Path(spec).expanduser().exists():
        return _load_folder(spec, **kwargs)
    if spec.count("/") == 1 and not sep and not spec.startswith(("/", ".", "~")):
        return _load_cross_encoder(spec, **kwargs)
    raise UnknownSpecError(
        f"unknown reranker spec {spec!r}: use 'default', a model folder, a hub name 'org/model', "
        f"or one of the prefixes {', '.join(p + ':' for p in registered_prefixes())}"
    )
