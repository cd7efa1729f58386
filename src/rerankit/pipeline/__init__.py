"""Retrieve -> rerank -> answer with [n] citations: ``Pipeline`` and its answerers."""

from .base import Answer, Answerer, Pipeline
from .demo import demo_retriever
from .extractive import ExtractiveAnswerer
from .generative import ChatAnswerer
from .text import clean_citations, split_sentences

__all__ = [
    "Answer",
    "Answerer",
    "Pipeline",
    "ExtractiveAnswerer",
    "ChatAnswerer",
    "demo_retriever",
    "clean_citations",
    "split_sentences",
]
