"""Score text with a scalar reward-model checkpoint (ours, or any one-output sequence classifier).

Used by benchmarks and reward assets; nothing here depends on how the checkpoint was trained.
Text for our checkpoints is rendered with `training.data.render_text` (the training template).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from rm_rewards.core.schema import Sample
from training.data import render_text


def encode_texts(
    tokenizer: Any, texts: list[str], max_length: int, device: torch.device
) -> dict[str, torch.Tensor]:
    """Tokenise (truncating as the tokenizer is set up to) and pad a batch, on `device`."""
    batch = tokenizer(texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    return {key: value.to(device) for key, value in batch.items()}


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers' console output off for our own loads and saves, restored afterwards: its load
    report (a fresh backbone's score head is always "missing", by design) and its progress bars
    ("Loading weights", "Writing model shards"). Errors still raise and still log."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


_SCORERS: dict[tuple[str, float], tuple[Any, Any]] = {}


def _scorer(model_path: str) -> tuple[Any, Any]:
    """Load once per checkpoint (benchmarks call score_texts many times); keeps the two most recent.

    The key includes config.json's mtime, so a checkpoint retrained in place is loaded afresh.
    """
    config_file = Path(model_path) / "config.json"
    key = (model_path, config_file.stat().st_mtime if config_file.exists() else 0.0)
    if key not in _SCORERS:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if len(_SCORERS) >= 2:
            _SCORERS.pop(next(iter(_SCORERS)))
        with quiet_transformers():
            model = AutoModelForSequenceClassification.from_pretrained(model_path).eval()
            tokenizer = AutoTokenizer.from_pretrained(model_path)
        if tokenizer.pad_token is None:  # a decoder RM trained elsewhere; padding needs some token
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
            model.config.pad_token_id = tokenizer.pad_token_id
        _SCORERS[key] = (model, tokenizer)
    return _SCORERS[key]


def score_texts(
    model_path: str | os.PathLike,
    texts: Sequence[str],
    batch_size: int = 32,
    max_length: int | None = None,
    device: str = "cpu",
) -> list[float]:
    """Scalar rewards for already-rendered texts (see `training.data.render_text`), batched, no grad.

    `max_length` defaults to the length the checkpoint was trained with (its tokenizer's
    model_max_length), capped at the backbone's position limit.
    """
    model, tokenizer = _scorer(str(model_path))
    model.to(device)
    limit = max_length or min(
        tokenizer.model_max_length, getattr(model.config, "max_position_embeddings", 512)
    )
    scores: list[float] = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = encode_texts(
                tokenizer, list(texts[start : start + batch_size]), limit, torch.device(device)
            )
            scores.extend(model(**batch).logits[:, 0].float().tolist())
    return scores


def score_with_checkpoint(
    model_path: str | os.PathLike, samples: Sequence[Sample], batch_size: int = 32, device: str = "cpu"
) -> list[list[float]]:
    """One reward per response of each sample, rendered with the training template."""
    texts = [render_text(s.input, r.text) for s in samples for r in s.responses]
    flat = score_texts(model_path, texts, batch_size, device=device)
    scores, offset = [], 0
    for sample in samples:
        scores.append(flat[offset : offset + len(sample.responses)])
        offset += len(sample.responses)
    return scores
