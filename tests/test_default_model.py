"""The shipped default model and the demo built on it (offline, from the package itself)."""

from __future__ import annotations

import json
import struct

import numpy as np

from rerankit import load_reranker
from rerankit.cli import main
from rerankit.demo import load_demo_data, run_demo
from rerankit.rerankers import default_model_path
from rerankit.rerankers.fused import FusedReranker


def test_shipped_weights_are_half_precision_and_small():
    path = default_model_path() / "model.safetensors"
    assert path.stat().st_size <= 50 * 1024 * 1024
    header_len = struct.unpack("<Q", path.read_bytes()[:8])[0]
    header = json.loads(path.read_bytes()[8 : 8 + header_len])
    dtypes = {v["dtype"] for k, v in header.items() if k != "__metadata__"}
    assert dtypes <= {"F16", "BF16", "I64"} and dtypes & {"F16", "BF16"}


def test_default_loads_offline_and_returns_probabilities():
    reranker = load_reranker("default")
    assert isinstance(reranker, FusedReranker) and reranker.score_kind == "probability"
    scores = reranker.score("what do koalas eat?", [
        "Koalas feed almost entirely on eucalyptus leaves.",
        "The stock exchange opens at nine.",
        "Eucalyptus trees grow in Australia.",
    ])
    assert np.all((scores >= 0) & (scores <= 1))
    assert int(np.argmax(scores)) == 0


def test_demo_puts_the_password_passages_in_the_reranked_top_3():
    data = load_demo_data()
    result = run_demo()
    top3 = [r.document.id for r in result.reranked]
    assert len(top3) == 3 and set(top3) == set(data.password_passages)
    assert [r.rank for r in result.reranked] == [0, 1, 2]
    assert all(0 <= v <= 1 for v in (*result.precision_before.values(), *result.precision_after.values()))


def test_demo_cli_prints_the_reranked_passages(capsys):
    try:
        main(["demo"])
    except SystemExit as exit_info:
        assert exit_info.code == 0
    out = capsys.readouterr().out
    assert "Reranked by 'default'" in out and "reset-steps" in out and "P@3" in out


def test_default_large_ships_only_a_fusion_beside_the_default_cross_encoder():
    folder = default_model_path().with_name("default-large")
    assert not list(folder.rglob("*.safetensors"))  # no second copy of the cross-encoder
    fusion = json.loads((folder / "rerankit.json").read_text())
    assert fusion["cross_encoder"] == "../default" and fusion["bi_encoder"] == "all-mpnet-base-v2"
    assert fusion["lexical_weight"] > 0 and (folder / "lexical.json.gz").is_file()


def test_default_large_scores_with_the_teacher_or_says_it_is_missing():
    import pytest

    from rerankit.errors import ModelNotFoundError
    from rerankit.packaged_models import mpnet_parts_installed

    if not mpnet_parts_installed():
        with pytest.raises(ModelNotFoundError):
            load_reranker("default-large")
        return
    reranker = load_reranker("default-large")
    assert isinstance(reranker, FusedReranker)
    assert reranker.cross_encoder.name == str(default_model_path().resolve())
    scores = reranker.score("what do koalas eat?", ["Koalas feed almost entirely on eucalyptus leaves.",
                                                     "The stock exchange opens at nine."])
    assert np.all((scores > 0) & (scores < 1)) and scores[0] > scores[1]
