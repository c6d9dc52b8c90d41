"""The one error type of the LLM layer, and the scrubbing that keeps secrets out of it.

A failed call is a value (`ChatResult.error`), not an exception, so a batch goes on; the same
`LLMError` can still be raised with `ChatResult.raise_for_error()` where an exception is wanted.
It carries only sanitised strings, never the SDK exception it came from: an SDK exception holds
the raw HTTP response, and a hostile or buggy server can echo the request's Authorization header
back in its body.
"""

from __future__ import annotations

from typing import Literal

ErrorReason = Literal[
    "timeout",  # no complete answer within the request timeout (ours or the server's 408)
    "rate_limited",  # 429 after every retry
    "server_error",  # 5xx or 409 after every retry
    "connection",  # refused, reset or dropped mid-response, after every retry
    "auth",  # 401 / 403: never retried
    "client_error",  # any other 4xx (bad request, unknown model, ...): never retried
    "bad_response",  # a 2xx whose body is not a chat completion (not JSON: after every retry)
    "empty_content",  # a completion with no text in it
    "parse_error",  # text that does not parse into the requested output model
]

RETRYABLE_REASONS: frozenset[str] = frozenset({"timeout", "rate_limited", "server_error", "connection"})

# Error text is cut to this length: enough to diagnose, never a whole echoed prompt.
MAX_MESSAGE_CHARS = 500
REDACTED = "[REDACTED]"


class LLMError(Exception):
    """Why a chat call produced no usable answer.

    `reason` is one of `ErrorReason` (stable, for tables and counters); `message` is a short,
    redacted human explanation; `status_code` is the last HTTP status seen, if any; `attempts`
    is the number of HTTP requests made for this call (0 for a cache hit).
    """

    def __init__(
        self, reason: ErrorReason, message: str, *, status_code: int | None = None, attempts: int = 0
    ) -> None:
        self.reason: ErrorReason = reason
        self.message = message[:MAX_MESSAGE_CHARS]
        self.status_code = status_code
        self.attempts = attempts
        super().__init__(str(self))

    @property
    def retryable(self) -> bool:
        return self.reason in RETRYABLE_REASONS

    def __str__(self) -> str:
        status = f" [HTTP {self.status_code}]" if self.status_code is not None else ""
        tries = f" after {self.attempts} attempt{'s' if self.attempts != 1 else ''}" if self.attempts else ""
        return f"{self.reason}{status}: {self.message}{tries}"

    def __repr__(self) -> str:
        return (
            f"LLMError(reason={self.reason!r}, message={self.message!r}, "
            f"status_code={self.status_code!r}, attempts={self.attempts!r})"
        )

    def __reduce__(self):  # keyword-only arguments: teach pickle (multiprocessing, Dagster IO)
        return (_rebuild_error, (self.reason, self.message, self.status_code, self.attempts))


def _rebuild_error(reason: ErrorReason, message: str, status_code: int | None, attempts: int) -> LLMError:
    return LLMError(reason, message, status_code=status_code, attempts=attempts)


# Placeholder keys for local servers ("none", "local") are not secrets, and replacing such short
# words would mangle ordinary text; any real API key is far longer than this.
MIN_SECRET_CHARS = 8


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """Replace every occurrence of each secret (of at least `MIN_SECRET_CHARS`) in `text`."""
    for secret in secrets:
        if len(secret) >= MIN_SECRET_CHARS:
            text = text.replace(secret, REDACTED)
    return text
