"""rerankit.settings: the one place the environment is read."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from rerankit.errors import InvalidInputError, ProviderError
from rerankit.settings import Settings, env_names, settings

SRC = Path(__file__).resolve().parents[1] / "src" / "rerankit"


def environment_reads(source: str) -> list[int]:
    """Lines of ``source`` that read the environment: ``os.environ`` (anything but an assignment target),
    ``os.getenv`` and ``os.environb``."""
    tree = ast.parse(source)
    stored = {id(t.value) for node in ast.walk(tree) if isinstance(node, ast.Assign)
              for t in node.targets if isinstance(t, ast.Subscript)}
    return sorted(node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb")
            and id(node) not in stored)


def test_only_the_settings_module_reads_the_environment():
    """``settings`` reads through pydantic-settings; no module touches ``os.environ`` but to set a variable
    for child processes (``serve --workers``, ``rerank-run``'s workers)."""
    readers = {str(p.relative_to(SRC)): lines for p in SRC.rglob("*.py")
               if (lines := environment_reads(p.read_text(encoding="utf-8")))}
    assert readers == {}
    sample = "import os\nos.environ['A'] = '1'\nb = os.environ.get('B')\nc = os.getenv('C')\nd = dict(os.environ)\n"
    assert environment_reads(sample) == [3, 4, 5]


def test_values_are_typed_and_read_at_each_call(monkeypatch, tmp_path):
    monkeypatch.setenv("RERANKIT_THREADS", "3")
    monkeypatch.setenv("RERANKIT_NATIVE", "0")
    monkeypatch.setenv("RERANKIT_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("RERANKIT_BI_ENCODER_BACKEND", " FP32 ")
    now = settings()
    assert (now.threads, now.native, now.cache_root, now.bi_encoder_backend) == (3, False, tmp_path / "c", "fp32")
    monkeypatch.setenv("RERANKIT_THREADS", "")  # empty counts as unset
    monkeypatch.delenv("RERANKIT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert settings().threads is None and settings().cache_root == tmp_path / "xdg" / "rerankit"


@pytest.mark.parametrize(("name", "value"), [("RERANKIT_THREADS", "two"), ("RERANKIT_THREADS", "0"),
                                             ("RERANKIT_EMBED_CACHE", "-1"), ("RERANKIT_NATIVE", "maybe"),
                                             ("RERANKIT_BI_ENCODER_BACKEND", "fp8")])
def test_a_bad_value_names_its_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(InvalidInputError, match=name):
        settings()


def test_provider_keys_come_from_their_variables_and_stay_out_of_repr(monkeypatch):
    from rerankit.rerankers.hosted import api_key_from_env

    for name in ("CO_API_KEY", "COHERE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ProviderError, match="CO_API_KEY or COHERE_API_KEY"):
        api_key_from_env("cohere", None, "cohere_api_key")
    monkeypatch.setenv("COHERE_API_KEY", "second")
    assert api_key_from_env("cohere", None, "cohere_api_key") == "second"
    monkeypatch.setenv("CO_API_KEY", "first")  # the first variable that is set wins
    assert api_key_from_env("cohere", None, "cohere_api_key") == "first"
    assert api_key_from_env("cohere", "explicit", "cohere_api_key") == "explicit"
    assert "first" not in repr(settings()) and env_names("jina_api_key") == ("JINA_API_KEY",)


def test_every_field_has_its_variable_in_the_module_table():
    import rerankit.settings as module

    for field in Settings.model_fields:
        assert all(f"``{name}``" in module.__doc__ for name in env_names(field)), field


def test_an_unknown_forced_backend_is_an_error(monkeypatch, tmp_path):
    from engine_helpers import build_tiny_cross_encoder
    from rerankit.rerankers.cross_encoder import CrossEncoderReranker

    folder = build_tiny_cross_encoder(tmp_path / "ce")
    monkeypatch.setenv("RERANKIT_BACKEND", "torch-fp64")
    with pytest.raises(InvalidInputError, match="RERANKIT_BACKEND"):
        CrossEncoderReranker(folder, backend="auto")
