"""The served models: each a reranker with its own micro-batcher, chosen by the request's ``model`` field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInputError, ServiceError
from ..rerankers.base import Reranker
from .batcher import MicroBatcher
from .config import ModelSpec, ServerConfig
from .errors import NOT_FOUND
from .metrics import Metrics
from .tokens import find_tokenizer


@dataclass
class ServedModel:
    """A named reranker, its batcher, and its tokenizer (None when it has no fast one)."""

    name: str
    spec: str
    reranker: Reranker
    batcher: MicroBatcher
    tokenizer: Any | None

    def describe(self) -> dict:
        return {"name": self.name, "spec": self.spec, "score_kind": self.reranker.score_kind,
                "batching": self.batcher.mode}


def load_model(spec: ModelSpec, backend: str | None, long_docs: str | None = None) -> Reranker:
    """``load_reranker(spec)`` with ``backend=`` and ``long_docs=`` when given; ``long_docs`` is dropped
    for rerankers that do not take it (a bi-encoder, a registered plugin)."""
    from ..rerankers import load_reranker

    kwargs = {k: v for k, v in (("backend", backend), ("long_docs", long_docs)) if v is not None}
    try:
        return load_reranker(spec.spec, **kwargs)
    except TypeError as exc:
        if "long_docs" not in kwargs:
            raise InvalidInputError(f"--backend {backend!r} does not apply to model {spec.spec!r} ({exc})") from exc
    kwargs.pop("long_docs")
    try:
        return load_reranker(spec.spec, **kwargs)
    except TypeError as exc:
        raise InvalidInputError(f"--backend {backend!r} does not apply to model {spec.spec!r} ({exc})") from exc


class ModelRegistry:
    """Looks models up by name; with a single model any name is accepted (the Cohere SDK always sends one)."""

    def __init__(self, models: list[ServedModel]) -> None:
        if not models:
            raise InvalidInputError("no model to serve")
        self.models = {m.name: m for m in models}
        self.default = models[0]

    @classmethod
    def build(cls, config: ServerConfig, metrics: Metrics,
              rerankers: dict[str, Reranker] | None = None) -> ModelRegistry:
        """Load every model of ``config`` (or take the ready ``rerankers`` by name) and start its batcher."""
        served = []
        for spec in config.models:
            reranker = (rerankers or {}).get(spec.name) or load_model(spec, config.backend, config.long_docs)
            batcher = MicroBatcher(reranker, name=spec.name, metrics=metrics,
                                   max_queue_documents=config.max_queue_documents,
                                   max_batch_documents=config.max_batch_documents)
            served.append(ServedModel(spec.name, spec.spec, reranker, batcher, find_tokenizer(reranker)))
        return cls(served)

    @property
    def names(self) -> list[str]:
        return list(self.models)

    def get(self, name: str | None) -> ServedModel:
        """The model called ``name``; the first one when ``name`` is None or only one model is served."""
        if name is None or len(self.models) == 1:
            return self.default
        try:
            return self.models[name]
        except KeyError:
            raise ServiceError(NOT_FOUND, f"model {name!r} is not served here; served models: "
                                      f"{', '.join(self.names)}") from None

    def close(self) -> None:
        for model in self.models.values():
            model.batcher.close()
