"""The deployment files in ``deploy/`` agree with the server they deploy."""

from __future__ import annotations

from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def _serve_help() -> str:
    from typer.testing import CliRunner

    from rerankit.cli.app import app

    return CliRunner().invoke(app, ["serve", "--help"], terminal_width=200).output


def test_kubernetes_manifest_probes_health_and_scales_on_a_metric_the_server_exports(tiny_reranker_app):
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")
    docs = {d["kind"]: d for d in yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text())}
    assert set(docs) == {"Deployment", "Service", "HorizontalPodAutoscaler"}
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["ports"][0]["containerPort"] == 8000
    help_text = _serve_help()
    assert all(arg in help_text for arg in container["args"] if arg.startswith("--"))
    assert docs["Service"]["spec"]["selector"] == docs["Deployment"]["spec"]["selector"]["matchLabels"]
    metric = docs["HorizontalPodAutoscaler"]["spec"]["metrics"][0]["pods"]["metric"]["name"]
    from fastapi.testclient import TestClient

    with TestClient(tiny_reranker_app) as client:
        assert client.get("/health").status_code == 200
        assert f"\n{metric}{{" in client.get("/metrics").text or f"\n{metric} " in client.get("/metrics").text


def test_dockerfile_installs_as_the_readme_does_and_serves_on_8000():
    text = (DEPLOY / "Dockerfile").read_text()
    assert "pip install torch==2.13.0" in text  # the CPU wheel, not the CUDA build
    assert 'ENTRYPOINT ["rerankit", "serve", "--host", "0.0.0.0", "--port", "8000"]' in text
    assert "HF_HUB_OFFLINE=1" in text  # never a model download at run time
    assert "EXPOSE 8000" in text and "/health" in text


@pytest.fixture
def tiny_reranker_app(tiny_cross_encoder_dir):
    from rerankit.rerankers.cross_encoder import CrossEncoderReranker
    from rerankit.server import ServerConfig, create_app
    from rerankit.server.config import ModelSpec

    reranker = CrossEncoderReranker(tiny_cross_encoder_dir, backend="torch-fp32")
    return create_app(ServerConfig(models=(ModelSpec("tiny", "tiny"),)), rerankers={"tiny": reranker})
