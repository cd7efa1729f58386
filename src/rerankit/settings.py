"""Every setting rerankit reads from the environment, in one typed object (pydantic-settings).

This is the only module that reads ``os.environ``. ``settings()`` reads the environment afresh on each
call (it is cheap, and it is called where a model or service loads, not per query), so a variable set at
run time, by a test or by ``rerank-run`` for its workers, counts from the next load. A value that does not
parse raises ``InvalidInputError`` naming the variable; an empty one counts as unset.

| variable | field | meaning |
|---|---|---|
| ``RERANKIT_CACHE``, ``XDG_CACHE_HOME`` | ``cache``, ``xdg_cache_home`` | cache folder (exports, ``auto``'s verdicts); default ``$XDG_CACHE_HOME/rerankit``, else ``~/.cache/rerankit`` |
| ``RERANKIT_BACKEND`` | ``backend`` | forces the engine backend that ``backend="auto"`` would choose (one of ``engine.BACKENDS``) |
| ``RERANKIT_THREADS`` | ``threads`` | intra-op threads of the CPU backends; default the physical core count |
| ``RERANKIT_NATIVE`` | ``native`` | ``0`` turns the optional AMX kernels (``rerankit-amx``) off |
| ``RERANKIT_BI_ENCODER_BACKEND`` | ``bi_encoder_backend`` | ``fp32``: sentence-transformers' own fp32 path for embeddings |
| ``RERANKIT_EMBED_CACHE`` | ``embed_cache`` | how many recent texts' embeddings are kept (default 20,000; 0 turns it off) |
| ``RERANKIT_API_KEYS`` | ``api_keys`` | the service's accepted bearer keys, comma-separated |
| ``RERANKIT_SERVE_CONFIG`` | ``serve_config`` | the service's configuration as JSON, for ``serve --workers N`` processes |
| ``RERANKIT_HTTP_API_KEY`` | ``http_api_key`` | bearer key of the ``http:`` reranker (a self-hosted rerank server) |
| ``CO_API_KEY`` / ``COHERE_API_KEY``, ``CO_API_URL`` | ``cohere_api_key``, ``cohere_api_url`` | Cohere |
| ``JINA_API_KEY``, ``JINA_API_URL`` | ``jina_api_key``, ``jina_api_url`` | Jina |
| ``VOYAGE_API_KEY``, ``VOYAGE_API_URL`` | ``voyage_api_key``, ``voyage_api_url`` | Voyage |
| ``OPENAI_API_KEY``, ``OPENAI_BASE_URL`` | ``openai_api_key``, ``openai_base_url`` | OpenAI-compatible chat and embeddings |
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import InvalidInputError

__all__ = ["Settings", "env_names", "settings"]


def _env(*names: str, secret: bool = False):
    return Field(None, validation_alias=AliasChoices(*names), repr=not secret)


class Settings(BaseSettings):
    """rerankit's settings from the environment (see the module docstring for each variable)."""

    model_config = SettingsConfigDict(env_prefix="RERANKIT_", extra="ignore", frozen=True, env_ignore_empty=True,
                                      str_strip_whitespace=True)

    cache: Path | None = None
    xdg_cache_home: Path | None = _env("XDG_CACHE_HOME")
    backend: str | None = None
    threads: int | None = Field(None, ge=1)
    native: bool = True
    bi_encoder_backend: Literal["fp32", "auto"] | None = None
    embed_cache: int = Field(20_000, ge=0)
    api_keys: str = Field("", repr=False)
    serve_config: str | None = None
    http_api_key: str | None = Field(None, repr=False)
    cohere_api_key: str | None = _env("CO_API_KEY", "COHERE_API_KEY", secret=True)
    cohere_api_url: str | None = _env("CO_API_URL")
    jina_api_key: str | None = _env("JINA_API_KEY", secret=True)
    jina_api_url: str | None = _env("JINA_API_URL")
    voyage_api_key: str | None = _env("VOYAGE_API_KEY", secret=True)
    voyage_api_url: str | None = _env("VOYAGE_API_URL")
    openai_api_key: str | None = _env("OPENAI_API_KEY", secret=True)
    openai_base_url: str | None = _env("OPENAI_BASE_URL")

    @field_validator("bi_encoder_backend", mode="before")
    @classmethod
    def _lower(cls, value):
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def cache_root(self) -> Path:
        """The rerankit cache folder (not created)."""
        if self.cache is not None:
            return self.cache.expanduser()
        return (self.xdg_cache_home or Path.home() / ".cache").expanduser() / "rerankit"


def env_names(field: str) -> tuple[str, ...]:
    """The environment variables that set ``field`` (for error messages)."""
    alias = Settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return tuple(str(c) for c in alias.choices)
    return (f"RERANKIT_{field.upper()}",)


def settings() -> Settings:
    """The settings as the environment holds them now; ``InvalidInputError`` names a variable that does not parse."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            names = env_names(field) if field in Settings.model_fields else (field,)
            problems.append(f"{' or '.join(names)}: {error['msg']}")
        raise InvalidInputError("bad environment variable: " + "; ".join(problems)) from None
