"""Content-derived sample ids and the hash-based train/test split.

Both come from SHA-256 over canonical JSON (sorted keys, no whitespace, UTF-8), never from row
positions or Python's randomised `hash()`, so they are identical across runs, machines and row
orders, and a `limit` on the rows read does not change the id or split of any row kept.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from rm_rewards.core.schema import ChatMessage, Split

DEFAULT_TEST_FRACTION = 0.2
DIGEST_CHARS = 16  # 64 bits: collisions are negligible at the scale of these datasets


def content_digest(content: Any) -> str:
    """Hex SHA-256 of canonical JSON of `content` (the normalised fields a converter used)."""
    text = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    # surrogatepass: text with lone surrogates hashes too; valid text hashes exactly as UTF-8.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:DIGEST_CHARS]


def sample_id(dataset: str, digest: str, variant: str) -> str:
    """`<dataset>-<content digest>-<variant>`, e.g. `hh_rlhf_harmless-0f3a…-pair_swapped`."""
    return f"{dataset}-{digest}-{variant}"


def conversation_key(messages: list[ChatMessage]) -> list[list[str]]:
    """The part of a conversation that identifies a prompt: (role, content) of every turn."""
    return [[message.role, message.content] for message in messages]


def check_test_fraction(test_fraction: float) -> float:
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be within [0, 1], got {test_fraction!r}")
    return test_fraction


def assign_split(messages: list[ChatMessage], test_fraction: float = DEFAULT_TEST_FRACTION) -> Split:
    """Split "test" for a stable `test_fraction` share of prompts, keyed on the conversation alone.

    Keying on the conversation (not the dataset or the row) puts every sample of one prompt, both
    A/B-swapped copies of a pair, and the same prompt seen in another dataset (HelpSteer2 ratings
    and its preference subset) in the same split, so no test prompt leaks into training.
    """
    check_test_fraction(test_fraction)
    digest = hashlib.sha256(
        json.dumps(conversation_key(messages), ensure_ascii=False).encode("utf-8", "surrogatepass")
    )
    position = int.from_bytes(digest.digest()[:8], "big") / 2**64  # uniform in [0, 1)
    return "test" if position < test_fraction else "train"
