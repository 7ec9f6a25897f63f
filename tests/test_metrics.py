"""Retrieval and classification metrics against hand-computed cases; chunked == full matrix."""
import math

import numpy as np
import pytest
import torch

from dgtrs_lib.evaluation.classification import classification_metrics, confusion_matrix
from dgtrs_lib.evaluation.retrieval import RETRIEVAL_KEYS, recall_at_k, retrieval_metrics, retrieval_ranks


def _hand_case():
    img = 3 * torch.eye(3)                                    # unnormalised on purpose
    txt = torch.tensor([[1.0, 0, 0], [0, 2, 0], [0, 1, 0], [5, 0, 0], [0, 0, 1]])
    t2i = [0, 0, 1, 2, 2]
    return img, txt, t2i


def test_retrieval_hand_computed_with_ties_and_several_positives():
    img, txt, t2i = _hand_case()
    i2t, t2i_rank = retrieval_ranks(img, txt, t2i)
    # caption 1 (image 0) ties with image 2 at 0 and loses to image 1: rank 2 (ties count against)
    assert t2i_rank.tolist() == [0, 2, 0, 2, 0]
    # image 0: best positive (caption 0, score 1) ties with caption 3 of image 2 -> rank 1
    # image 1: its caption 2 ties with caption 1 (image 0) -> rank 1; image 2: caption 4 wins -> 0
    assert i2t.tolist() == [1, 1, 0]
    m = retrieval_metrics(img, txt, t2i, ties="pessimistic")
    assert list(m) == list(RETRIEVAL_KEYS)
    assert m["i2t_R@1"] == pytest.approx(100 / 3)
    assert m["i2t_R@5"] == m["i2t_R@10"] == 100.0
    assert m["t2i_R@1"] == pytest.approx(60.0)
    assert m["t2i_R@5"] == 100.0
    assert m["mR"] == pytest.approx((100 / 3 + 100 + 100 + 60 + 100 + 100) / 6)


def test_expected_ties_average_over_tie_orders():
    img, txt, t2i = _hand_case()
    m = retrieval_metrics(img, txt, t2i)                      # default: expected
    # images 0 and 1 each tie with one negative caption: a coin flip for R@1; image 2 is a clear hit
    assert m["i2t_R@1"] == pytest.approx(100 * (0.5 + 0.5 + 1) / 3)
    assert m["t2i_R@1"] == pytest.approx(60.0)                # captions 1 and 3 lose to a strictly higher image
    const = retrieval_metrics(torch.ones(20, 8), torch.ones(40, 8), np.repeat(np.arange(20), 2))
    assert const["t2i_R@10"] == pytest.approx(100 * 10 / 20)  # chance
    assert const["i2t_R@10"] == pytest.approx(100 * (1 - (30 * 29) / (40 * 39)))  # either of 2 captions in 10 of 40


def test_expected_ties_match_random_tie_breaking():
    rng = np.random.default_rng(3)
    img = rng.choice([-1.0, 1.0], size=(25, 4))
    t2i = np.concatenate([np.arange(25), rng.integers(0, 25, 25)])
    txt = rng.choice([-1.0, 1.0], size=(len(t2i), 4))
    s = (txt / 2) @ (img / 2).T                               # exact scores, many ties
    hits_t, hits_i = np.zeros(3), np.zeros(3)
    trials = 400
    for _ in range(trials):                                   # topk with a random order among ties
        jitter_t = s + 1e-6 * rng.random(s.shape)
        order_t = np.argsort(-jitter_t, axis=1)
        rank_t = np.argmax(order_t == t2i[:, None], axis=1)
        jitter_i = s.T + 1e-6 * rng.random(s.T.shape)
        order_i = np.argsort(-jitter_i, axis=1)
        first_pos = np.array([np.min(np.nonzero(t2i[order_i[i]] == i)[0]) for i in range(25)])
        for n, k in enumerate((1, 5, 10)):
            hits_t[n] += np.mean(rank_t < k)
            hits_i[n] += np.mean(first_pos < k)
    m = retrieval_metrics(img, txt, t2i)
    for n, k in enumerate((1, 5, 10)):
        assert m[f"t2i_R@{k}"] == pytest.approx(100 * hits_t[n] / trials, abs=2.0)
        assert m[f"i2t_R@{k}"] == pytest.approx(100 * hits_i[n] / trials, abs=2.0)


def test_optimistic_ties_count_for_the_query():
    img, txt, t2i = _hand_case()
    i2t, t2i_rank = retrieval_ranks(img, txt, t2i, ties="optimistic")
    assert t2i_rank.tolist() == [0, 1, 0, 1, 0]              # the tied image no longer counts
    assert i2t.tolist() == [0, 0, 0]
    m = retrieval_metrics(torch.ones(20, 8), torch.ones(40, 8), np.repeat(np.arange(20), 2), ties="optimistic")
    assert m["t2i_R@1"] == 100.0                              # why this is not the default
    with pytest.raises(ValueError, match="ties"):
        retrieval_ranks(img, txt, t2i, ties="random")
    with pytest.raises(ValueError, match="ties"):
        retrieval_metrics(img, txt, t2i, ties="random")


def test_constant_features_score_zero_not_hundred():
    img = torch.ones(20, 8)
    txt = torch.ones(40, 8)
    m = retrieval_metrics(img, txt, np.repeat(np.arange(20), 2), ties="pessimistic")
    assert m["t2i_R@10"] == 0.0 and m["i2t_R@10"] == 0.0      # every candidate ties: 19 / 38 negatives above


def _reference_ranks(img, txt, t2i, ties="pessimistic"):
    """Straightforward full-matrix implementation of the same definition (float64)."""
    beats = np.greater_equal if ties == "pessimistic" else np.greater
    img = img / np.linalg.norm(img, axis=1, keepdims=True)
    txt = txt / np.linalg.norm(txt, axis=1, keepdims=True)
    s = txt @ img.T
    t2i = np.asarray(t2i)
    t_rank = np.array([beats(np.delete(s[j], t2i[j]), s[j, t2i[j]]).sum() for j in range(len(txt))])
    i_rank = []
    for i in range(len(img)):
        pos = t2i == i
        best = s[pos, i].max()
        i_rank.append((beats(s[:, i], best) & ~pos).sum())
    return np.array(i_rank), t_rank


@pytest.mark.parametrize("chunk", [1, 7, 64, None])
@pytest.mark.parametrize("ties", ["pessimistic", "optimistic"])
def test_chunked_equals_full_matrix_with_exact_ties(chunk, ties):
    rng = np.random.default_rng(0)
    # +-1 entries in 4-D: normalised entries are exactly +-0.5, scores exact multiples of 0.25 -> many ties
    img = rng.choice([-1.0, 1.0], size=(30, 4))
    t2i = np.concatenate([np.arange(30), rng.integers(0, 30, 50)])
    txt = rng.choice([-1.0, 1.0], size=(len(t2i), 4))
    ref_i, ref_t = _reference_ranks(img, txt, t2i, ties)
    got_i, got_t = retrieval_ranks(torch.tensor(img), torch.tensor(txt), t2i, chunk_size=chunk, ties=ties)
    np.testing.assert_array_equal(got_i, ref_i)
    np.testing.assert_array_equal(got_t, ref_t)


def test_chunked_equals_full_matrix_random_floats():
    rng = np.random.default_rng(1)
    img = rng.normal(size=(200, 16)).astype(np.float32)
    t2i = np.repeat(np.arange(200), 5)
    txt = (img[t2i] + rng.normal(scale=1.5, size=(1000, 16))).astype(np.float32)
    full = retrieval_metrics(img, txt, t2i, chunk_size=10_000)
    for chunk in (3, 128):
        assert retrieval_metrics(img, txt, t2i, chunk_size=chunk) == full
    assert retrieval_metrics(img, txt, t2i, ties="pessimistic") == retrieval_metrics(img, txt, t2i, ties="optimistic") == full
    ref_i, ref_t = _reference_ranks(img.astype(np.float64), txt.astype(np.float64), t2i)
    assert full["t2i_R@5"] == pytest.approx(recall_at_k(ref_t, 5))
    assert full["i2t_R@1"] == pytest.approx(recall_at_k(ref_i, 1))


def test_retrieval_bad_input_is_named():
    img, txt, _ = _hand_case()
    with pytest.raises(ValueError, match="text_to_image"):
        retrieval_metrics(img, txt, [0, 0, 1])
    with pytest.raises(ValueError, match="no caption"):
        retrieval_metrics(img, txt, [0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="dim"):
        retrieval_metrics(img, txt[:, :2], [0, 0, 1, 2, 2])


def test_classification_tiny_known_case():
    logits = torch.tensor([[3.0, 1, 0], [0, 2, 1], [0, 2, 1], [1, 0, 0.5], [0, 0, 9]])
    labels = [0, 1, 2, 2, 2]
    m = classification_metrics(logits, labels)
    assert m["acc1"] == pytest.approx(60.0)                  # predictions 0, 1, 1, 0, 2
    assert math.isnan(m["acc5"])                             # fewer than 5 classes
    assert m["mean_per_class_recall"] == pytest.approx(100 * (1 + 1 + 1 / 3) / 3)
    np.testing.assert_array_equal(m["confusion_matrix"], [[1, 0, 0], [0, 1, 0], [1, 1, 1]])


def test_classification_top5_and_absent_classes():
    logits = torch.zeros(2, 6)
    logits[0] = torch.tensor([6.0, 5, 4, 3, 2, 1])           # label 4 is 5th -> top-5 hit, top-1 miss
    logits[1] = torch.tensor([6.0, 5, 4, 3, 2, 1])           # label 5 is 6th -> miss
    m = classification_metrics(logits, [4, 5])
    assert m["acc1"] == 0.0 and m["acc5"] == 50.0
    assert m["mean_per_class_recall"] == 0.0                 # only classes 4 and 5 are present
    assert np.isnan(m["per_class_recall"][0])


def test_confusion_matrix_counts():
    np.testing.assert_array_equal(confusion_matrix([0, 0, 1], [1, 1, 1], 2), [[0, 2], [0, 1]])
    with pytest.raises(ValueError, match="labels"):
        classification_metrics(torch.zeros(2, 3), [0, 3])
