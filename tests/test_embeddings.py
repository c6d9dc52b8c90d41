"""The bundled MiniLM embedder (real model, a few strings) and farthest-point selection."""

from __future__ import annotations

import time

import numpy as np
import pytest

from rm_rewards.judging.embeddings import (
    EMBEDDING_DIM,
    EmbeddingError,
    MiniLMEmbedder,
    _checked_unit_rows,
    default_embedder,
    embed_texts,
    farthest_point_order,
)

CLUSTERS = {
    "brevity": ["Keep answers short and to the point.", "Answers should be brief and concise."],
    "safety": [
        "Refuse to help with weapons or violence.",
        "Decline requests for help with violence or weapons.",
    ],
    "code": [
        "Code must compile and handle edge cases.",
        "Code should handle edge cases and compile without errors.",
    ],
}


def test_real_embeddings_are_unit_vectors_that_group_paraphrases() -> None:
    started = time.monotonic()
    texts = [t for group in CLUSTERS.values() for t in group]
    vectors = embed_texts(texts)
    elapsed = time.monotonic() - started
    assert elapsed < 60, f"loading and embedding took {elapsed:.1f}s"
    assert vectors.shape == (6, EMBEDDING_DIM) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    for k in range(0, 6, 2):  # each paraphrase is closer to its twin than to any other text
        others = [similarity[k, j] for j in range(6) if j not in (k, k + 1)]
        assert similarity[k, k + 1] > max(others)


def test_the_model_loads_once_per_process_and_batching_does_not_change_vectors() -> None:
    embedder = default_embedder()
    assert default_embedder() is embedder
    texts = ["a short one", "a much longer sentence that needs padding for the others in its batch"]
    together = embedder.embed(texts)
    load_seconds = embedder.load_seconds
    one_by_one = np.concatenate([embedder.embed([t]) for t in texts])
    assert embedder.load_seconds == load_seconds  # not reloaded
    assert np.allclose(together, one_by_one, atol=1e-5)
    assert embedder.embed([]).shape == (0, EMBEDDING_DIM)


def test_embedding_failures_raise_and_never_become_zero_vectors(tmp_path) -> None:
    with pytest.raises(TypeError, match=r"texts\[1\]: expected a string"):
        default_embedder().embed(["fine", None])
    with pytest.raises(EmbeddingError, match="cannot load"):
        MiniLMEmbedder(tmp_path / "no-model-here").embed(["anything"])
    broken = np.ones((3, 4), dtype=np.float32)
    broken[1] = 0.0
    with pytest.raises(EmbeddingError, match=r"texts\[1\] = 'zero'"):
        _checked_unit_rows(broken, ["ok", "zero", "ok too"])
    broken[1] = np.nan
    with pytest.raises(EmbeddingError):
        _checked_unit_rows(broken, ["ok", "nan", "ok too"])


def test_farthest_point_order_picks_one_per_cluster() -> None:
    texts = [t for group in CLUSTERS.values() for t in group]
    chosen = farthest_point_order(embed_texts(texts), 3, first=0)
    assert chosen[0] == 0
    assert sorted(k // 2 for k in chosen) == [0, 1, 2]


def test_farthest_point_order_on_known_vectors() -> None:
    vectors = np.array([[1, 0], [0.99, 0.141], [0, 1], [-1, 0]], dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert farthest_point_order(vectors, 3, first=0) == [0, 3, 2]
    assert farthest_point_order(vectors, 10, first=1) == [1, 3, 2, 0]  # capped at the row count
    assert farthest_point_order(vectors, 0) == []
    with pytest.raises(ValueError, match="not a row"):
        farthest_point_order(vectors, 2, first=7)
