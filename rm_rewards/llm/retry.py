"""When a failed attempt is tried again, and after how long.

Timeouts, dropped connections, 408/409/429 and 5xx are retried (`errors.RETRYABLE_REASONS`), and so
is a 2xx whose body is not JSON (cut short or mangled on its way: `AttemptFailed.transient`), up to
`max_retries` times, with exponential backoff and "equal jitter"; a server's Retry-After (seconds,
milliseconds or an HTTP date) replaces the backoff, unless it asks for longer than
`max_retry_after_s`, which ends the call instead. Every retry is the client's own: the SDK's are off.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from rm_rewards.llm.config import LLMConfig
from rm_rewards.llm.errors import LLMError

if TYPE_CHECKING:
    from rm_rewards.llm.wire import AttemptFailed


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `retry-after` as seconds or an HTTP date."""
    if not headers:
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            value = float(milliseconds) / 1000
            return value if math.isfinite(value) and value >= 0 else None
        except ValueError:
            pass
    text = headers.get("retry-after")
    if text is None:
        return None
    try:
        value = float(text)
        return value if math.isfinite(value) and value >= 0 else None
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def retry_wait(
    config: LLMConfig, attempt: int, retry_after: float | None, rng: random.Random
) -> float | None:
    """Seconds before retry number `attempt`; None when Retry-After is beyond what we accept."""
    if retry_after is not None:
        if retry_after > config.max_retry_after_s:
            return None
        # At least what the server asked, spread a little so a crowd does not return at once.
        return retry_after * rng.uniform(1.0, 1.1)
    ceiling = min(config.backoff_max_s, config.backoff_base_s * 2 ** (attempt - 1))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)  # "equal jitter"


def decide(config: LLMConfig, failure: AttemptFailed, attempt: int, rng: random.Random) -> float | LLMError:
    """After attempt number `attempt` failed: seconds to wait before the next one, or the call's
    error when there is to be none (not retryable, retries exhausted, Retry-After too long)."""
    if not failure.retryable:
        return failure.to_error(attempt)
    if attempt > config.max_retries:
        return failure.to_error(attempt, "; retries exhausted")
    wait = retry_wait(config, attempt, failure.retry_after, rng)
    if wait is None:
        return failure.to_error(
            attempt, f"; server asked to wait {failure.retry_after:.0f}s, more than max_retry_after_s"
        )
    return wait


__all__ = ["decide", "parse_retry_after", "retry_wait"]
