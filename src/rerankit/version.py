"""The package version (one place: ``rerankit.__version__`` and index manifests read it)."""

__version__ = "0.1.0"
