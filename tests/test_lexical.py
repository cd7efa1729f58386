"""BM25 with fixed reference frequencies, and its place in the fused reranker."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from rerankit import Document
from rerankit.errors import DataFormatError, InvalidInputError
from rerankit.lexical import LexicalScorer

REFERENCE = [
    "the cat sat on the mat",
    "the dog chased the cat",
    "a dog and a cat and a bird",
    "the weather is mild today",
    "zygomorphic flowers have bilateral symmetry",
    "the cat is asleep",
]


def test_rare_terms_weigh_more_than_common_ones():
    scorer = LexicalScorer.from_texts(REFERENCE, min_df=1)
    assert scorer.documents == len(REFERENCE)
    assert scorer.idf("zygomorph") > scorer.idf("dog") > scorer.idf("cat")  # stemmed terms
    scores = scorer.scores("cat zygomorphic", ["a cat here", "zygomorphic petals", "nothing relevant"])
    assert scores[1] > scores[0] > scores[2] == 0.0


def test_scores_lie_in_unit_interval_and_a_full_match_scores_highest():
    scorer = LexicalScorer.from_texts(REFERENCE, min_df=1)
    texts = ["dog cat", "dog", "cat", "dog cat " + "weather mild " * 20, "bird"]
    scores = scorer.scores("dog cat", texts)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert scores[0] == max(scores) and scores[4] == 0.0
    assert scores[0] > scores[3]  # the longer text is normalized by its length


def test_min_df_drops_rare_terms_and_they_score_as_seen_once():
    scorer = LexicalScorer.from_texts(REFERENCE, min_df=2)
    assert "zygomorph" not in scorer.df and "cat" in scorer.df
    assert scorer.idf("zygomorph") == scorer.idf("never-seen-term") > scorer.idf("cat")


def test_queries_without_indexable_words_and_empty_candidate_lists():
    scorer = LexicalScorer.from_texts(REFERENCE, min_df=1)
    assert scorer.scores("the a and", ["the cat"]).tolist() == [0.0]  # stopwords only
    assert scorer.scores("cat", []).shape == (0,)
    with pytest.raises(InvalidInputError):
        LexicalScorer.from_texts([])
    with pytest.raises(InvalidInputError):
        LexicalScorer({}, 0, 1.0)


def test_saved_statistics_load_to_the_same_scores(tmp_path):
    scorer = LexicalScorer.from_texts(REFERENCE, min_df=1)
    path = tmp_path / "lexical.json.gz"
    scorer.save(path)
    loaded = LexicalScorer.load(path)
    texts = ["the cat sat", "zygomorphic", "weather"]
    np.testing.assert_array_equal(loaded.scores("cat weather zygomorphic", texts),
                                  scorer.scores("cat weather zygomorphic", texts))
    assert [p.name for p in tmp_path.iterdir()] == ["lexical.json.gz"]  # no temporary file left behind


@pytest.mark.parametrize("content", [b"not gzip", None, "json"])
def test_unreadable_statistics_raise_a_typed_error(tmp_path, content):
    import gzip

    path = tmp_path / "lexical.json.gz"
    if content == "json":
        path.write_bytes(gzip.compress(json.dumps({"format": "something-else"}).encode()))
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(DataFormatError):
        LexicalScorer.load(path)


def test_fused_reranker_adds_the_weighted_lexical_score(tmp_path):
    from rerankit.rerankers.fused import FUSION_FILE, LEXICAL_FILE, FusedReranker
    from rerankit.rerankers.registry import default_model_path

    folder = tmp_path / "model"
    shutil.copytree(default_model_path(), folder)
    fusion = {**json.loads((folder / FUSION_FILE).read_text()), "lexical_weight": 0.0}
    (folder / FUSION_FILE).write_text(json.dumps(fusion))
    docs = ["Reset your password from the account page.", "Our office opens at nine.",
            "The zygomorphic orchid has bilateral symmetry."]
    plain = FusedReranker(folder)
    base = plain.score("zygomorphic orchid", docs)
    LexicalScorer.from_texts(REFERENCE, min_df=1).save(folder / LEXICAL_FILE)
    (folder / FUSION_FILE).write_text(json.dumps({**fusion, "lexical_weight": 5.0}))
    lexical = FusedReranker(folder)
    ce, cos, lx = lexical.components("zygomorphic orchid", [Document(d) for d in docs])
    assert lx is not None and lx[2] > 0 and lx[0] == lx[1] == 0.0
    boosted = lexical.score("zygomorphic orchid", docs)
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    np.testing.assert_allclose(logit(boosted) - logit(base), 5.0 * lx, atol=1e-3)
    assert lexical.score_many(["zygomorphic orchid"], [docs])[0] == pytest.approx(boosted, abs=1e-6)
    (folder / LEXICAL_FILE).unlink()
    with pytest.raises(DataFormatError):
        FusedReranker(folder)


def test_scores_from_several_threads_match_one_thread():
    from concurrent.futures import ThreadPoolExecutor

    scorer = LexicalScorer.from_texts(REFERENCE, min_df=1)
    texts = [t + " running runners ran" for t in REFERENCE] * 5
    expected = scorer.scores("cats running weather", texts)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: scorer.scores("cats running weather", texts), range(16)))
    for got in results:
        np.testing.assert_array_equal(got, expected)
