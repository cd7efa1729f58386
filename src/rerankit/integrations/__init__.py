"""Adapters for other frameworks, each an optional extra (imported on demand, never by ``import rerankit``):

- ``rerankit.integrations.langchain.RerankitCompressor``: a LangChain ``BaseDocumentCompressor``
  (``pip install 'rerankit[langchain]'``);
- ``rerankit.integrations.llama_index.RerankitPostprocessor``: a LlamaIndex ``BaseNodePostprocessor``
  (``pip install 'rerankit[llamaindex]'``).
"""
