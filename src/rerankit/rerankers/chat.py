"""A minimal client for OpenAI-compatible chat completions (``POST {base}/chat/completions``) over httpx.

Base URL from ``base_url=`` or ``OPENAI_BASE_URL`` (default ``https://api.openai.com/v1``); key from
``api_key=`` or ``OPENAI_API_KEY`` (needed only by servers that check it: local ones such as vLLM,
llama.cpp or Ollama usually do not). Retries follow ``RetryPolicy``; failures are ``ProviderError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import InvalidInputError, ProviderError
from ..http_client import HttpConnection, RetryPolicy, with_retries
from ..settings import settings

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_TIMEOUT_S = 60.0

Message = Mapping[str, str]


class ChatClient:
    """``complete(messages)`` -> the assistant's text, from one chat-completions endpoint and model."""

    provider = "llm"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        temperature: float | None = 0.0,
        max_tokens: int | None = None,
    ) -> None:
        if not model:
            raise InvalidInputError("an LLM needs a model name")
        self._connection = HttpConnection(timeout, retry, max_retries)
        base_url = (base_url or settings().openai_base_url or DEFAULT_BASE_URL).rstrip("/")
        if not base_url.startswith(("http://", "https://")):
            raise InvalidInputError(f"the LLM base URL must be an http(s) URL, got {base_url!r}")
        self.model, self.base_url = model, base_url
        self.timeout, self.retry = self._connection.timeout, self._connection.retry
        self.url = f"{base_url}/chat/completions"
        self.api_key = api_key or settings().openai_api_key or None
        if self.api_key is None and base_url == DEFAULT_BASE_URL:
            raise ProviderError(self.provider, "no API key for api.openai.com: pass api_key=... or set OPENAI_API_KEY "
                                               "(or point OPENAI_BASE_URL at another OpenAI-compatible server)")
        self.temperature, self.max_tokens = temperature, max_tokens

    def _once(self, messages: Sequence[Message], max_tokens: int | None) -> str:
        body: dict[str, Any] = {"model": self.model, "messages": [dict(m) for m in messages]}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if max_tokens or self.max_tokens:
            body["max_tokens"] = max_tokens or self.max_tokens
        answer = self._connection.post_json(self.provider, self.url, body, self.api_key)
        try:
            content = answer["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise ProviderError(self.provider,
                                f"unusable answer from {self.url}: no choices[0].message.content") from exc
        if isinstance(content, list):  # content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
        if not isinstance(content, str):
            raise ProviderError(self.provider, f"unusable answer from {self.url}: content is {type(content).__name__}")
        return content

    def complete(self, messages: Sequence[Message], max_tokens: int | None = None) -> str:
        """The assistant's reply to ``messages`` (retried on 429, 5xx and timeouts)."""
        return with_retries(lambda: self._once(messages, max_tokens), self.retry, "chat completion")

    def close(self) -> None:
        self._connection.close()

    def __repr__(self) -> str:
        return f"ChatClient(model={self.model!r}, url={self.url!r})"
