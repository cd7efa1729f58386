"""The answer from an OpenAI-compatible LLM, told to use only the numbered passages and cite them."""

from __future__ import annotations

from collections.abc import Sequence

from ..http_client import RetryPolicy
from ..rerankers.chat import ChatClient, Message
from ..types import Document

SYSTEM_PROMPT = (
    "You answer questions using only the numbered context passages you are given, never outside knowledge. "
    "After each sentence, cite the passage or passages that support it by number in square brackets, e.g. [2]. "
    "If the context does not contain the answer, say that the context does not contain the answer."
)


def answer_messages(question: str, passages: Sequence[Document], max_words: int = 300) -> list[Message]:
    """The system prompt, then the passages as ``[n] title. text`` and the question."""
    context = "\n\n".join(
        f"[{n}] {' '.join(p.full_text.split()[:max_words])}" for n, p in enumerate(passages, start=1)
    )
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Context:\n{context}\n\nQuestion: {question}\nAnswer:"},
    ]


class ChatAnswerer:
    """Generates the answer with ``model`` on an OpenAI-compatible endpoint (``OPENAI_BASE_URL``,
    ``OPENAI_API_KEY``). Citations to passages that do not exist are removed by the pipeline."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        max_tokens: int | None = 512,
        client: ChatClient | None = None,
    ) -> None:
        self.client = client or ChatClient(model, base_url=base_url, api_key=api_key, timeout=timeout,
                                           max_retries=max_retries, retry=retry, max_tokens=max_tokens)
        self.name = f"llm:{self.client.model}"

    def answer(self, question: str, passages: Sequence[Document]) -> str:
        return self.client.complete(answer_messages(question, passages)).strip()
