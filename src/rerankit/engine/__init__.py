"""Fast local reranking: ONNX Runtime / bf16 backends, token-budget batching, long-document windows.

``EngineReranker(folder, backend="auto")`` runs a Hugging Face cross-encoder or a Qwen3-style
yes/no decoder reranker behind the ``Reranker`` façade. One module per job: ``hardware`` (CPU
flags, threads), ``cache`` (export cache, atomic writes), ``modules`` (the torch scoring module),
``inputs`` (tokenization, prompt layout, windows), ``batching`` (token-budget packing),
``torch_backend`` / ``onnx_backend`` (runners), ``auto`` (backend choice), ``reranker`` (the façade),
``embedder`` / ``onnx_embedder`` (bi-encoder embeddings).
"""

from .backend import BACKENDS, available_backends
from .reranker import EngineReranker, make_runner

__all__ = ["BACKENDS", "EngineReranker", "available_backends", "make_runner"]
