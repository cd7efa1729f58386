"""Sentences and [n] citations: splitting passages for extractive answers, checking an answer's citations."""

from __future__ import annotations

import re

# After . ! or ? (and a closing quote or bracket), before a space and a capital, digit or opening mark.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+(?=[A-Z0-9\"'(\[])|\s*\n\s*")
_CITATION = re.compile(r"\[(\s*\d+\s*(?:[,;]\s*\d+\s*)*)\]")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``: split after ``.``, ``!`` or ``?`` (and a closing quote) when a capital, digit
    or opening quote follows, and at line breaks. ``'Forgot password?' and follow`` stays whole."""
    return [part.strip() for part in _SENTENCE_END.split(text) if part and part.strip()]


def clean_citations(text: str, count: int) -> tuple[str, list[int]]:
    """Drop citations that point at no source (outside 1..``count``) and return the text with the
    cited numbers, in order of first use. ``[1, 2]`` and ``[1][2]`` both count."""
    cited: list[int] = []

    def keep(match: re.Match[str]) -> str:
        numbers = [int(x) for x in re.split(r"[,;]", match.group(1))]
        valid = [n for n in numbers if 1 <= n <= count]
        for n in valid:
            if n not in cited:
                cited.append(n)
        return f"[{', '.join(str(n) for n in valid)}]" if valid else ""

    cleaned = _CITATION.sub(keep, text)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned)
    cleaned = re.sub(r"[ \t]{2,}", " ", cleaned)
    return cleaned.strip(), cited
