"""Math answer equivalence with math-verify, correct in batch mode and spread over processes.

math-verify parses the final answer of a response (LaTeX, \\boxed{}, plain numbers and
expressions) and checks it against the reference symbolically. Each parse and verify runs
under our time limit (math-verify's own SIGALRM timeout fails outside a main thread):

- a single `evaluate`, or a batch of at most `inline_batch_max` samples, in the main thread
  runs inline, under the limit; from any other thread it goes through the process pool, so it
  keeps its time limit;
- larger batches go to the process pool. How the limit and the pool work (hung or crashed
  workers, retries) is in `rm_rewards.rules.math_verify_pool`.

Scripts that batch-score must guard their entry point with `if __name__ == "__main__":`, the
usual rule for spawned worker processes.

Bare function: `math_verify(candidate, reference) -> float`.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Sequence

from pydantic import Field

from rm_rewards.core.kinds import DEFAULT_MAX_CONCURRENCY, PointwiseReward, describe_error
from rm_rewards.core.registry import register
from rm_rewards.core.schema import ResponseScore, RewardResult, Sample
from rm_rewards.rules import math_verify_pool
from rm_rewards.rules.math_verify_pool import ChunkJudge, Deadline, Job, Verdict, in_main_thread, time_limit

DEFAULT_TIMEOUT_S = 5.0
# Final answers sit at the end; parsing 1 MB of prose would only burn the time limit.
DEFAULT_MAX_CHARS = 4000


_math_verify_api = None


def _api():
    """math-verify's parse/verify and extraction configs, imported on first use (sympy is slow to
    import: ~0.5 s, seconds under load; callers take that outside the per-sample time limit)."""
    global _math_verify_api
    if _math_verify_api is None:
        import math_verify
        import math_verify.grader
        import math_verify.parser

        # We pass no timeout to math-verify (ours wraps the call); silence its one-time warning.
        math_verify.parser.TIMEOUT_WARNING_SHOWN = True
        math_verify.grader.TIMEOUT_WARNING_SHOWN = True
        latex = math_verify.LatexExtractionConfig()
        expr = math_verify.ExprExtractionConfig()
        # The first parse builds the LaTeX parser and each config's regexes (~0.1 s): do it here,
        # outside any time limit, with the configs `_parse_reference` and `_judge_parsed` use.
        for configs in ((latex,), (latex, expr)):
            math_verify.parse("\\boxed{1}", configs, parsing_timeout=None)
        _math_verify_api = (math_verify.parse, math_verify.verify, (latex,), (latex, expr))
    return _math_verify_api


def gsm8k_final_answer(text: str) -> str:
    """The final answer of a GSM8K solution: what follows the last '####', without commas."""
    if "####" not in text:
        raise ValueError("no '####' final answer in the text")
    return text.rsplit("####", 1)[1].strip().replace(",", "")


# A word of three or more letters that is not a LaTeX command: the reference is prose.
_PROSE_RE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")


def _parse_reference(reference: str) -> list:
    parse, _, latex_only, latex_and_expr = _api()
    text = reference.strip()
    if "####" in text:
        text = gsm8k_final_answer(text)
    if "\\boxed" not in text and "$" not in text and not _PROSE_RE.search(text):
        # A bare reference ("18", "\frac{1}{2}", "x^2+1") is the answer itself: box it so the
        # LaTeX extractor takes all of it rather than hunting for a sub-expression. Prose
        # ("The answer is 42") is left to the extractors, which find its final answer.
        boxed = parse("\\boxed{" + text + "}", latex_only, parsing_timeout=None)
        if boxed:
            return boxed
    return parse(text, latex_and_expr, parsing_timeout=None)


def _shown(parsed: list) -> str:
    """The matched text of a parse result (never str() of a sympy object, which can hang)."""
    text = next((item for item in parsed if isinstance(item, str)), "?")
    return text if len(text) <= 60 else text[:57] + "..."


def answer_region(text: str) -> str:
    """Where a response states its final answer: the last `<answer>` block, else the line after
    the last GSM8K-style '####', else the whole text. Numbers written after the answer (a phone
    number in a signature, say) would otherwise be taken as the answer."""
    start = text.rfind("<answer>")
    if start >= 0:
        end = text.find("</answer>", start)
        inner = text[start + len("<answer>") : end if end >= 0 else len(text)]
        if inner.strip():
            return inner
    marker = text.rfind("####")
    if marker >= 0:
        line = text[marker + 4 :].strip().split("\n", 1)[0]
        if line.strip():
            return line
    return text


def _judge_parsed(gold: list, candidate: str, max_chars: int) -> Verdict:
    parse, verify, _, latex_and_expr = _api()
    predicted = parse(answer_region(candidate[-max_chars:]), latex_and_expr, parsing_timeout=None)
    if not predicted:
        return Verdict(0.0, "no math answer found in the response", None)
    same = verify(gold, predicted, timeout_seconds=None)
    verdict = "matches" if same else "does not match"
    return Verdict(1.0 if same else 0.0, f"answer {_shown(predicted)!r} {verdict} {_shown(gold)!r}", None)


def judge_sample(
    reference: str, candidates: Sequence[str], timeout_s: float, max_chars: int
) -> list[Verdict]:
    """Verdicts for every candidate against one reference (parsed once). Never raises.

    Each parse + verify runs under its own time limit when called from a main thread; importing
    math-verify (first call in a process) does not count against it.
    """
    try:
        _api()
    except Exception as exc:  # noqa: BLE001 - a broken install fails every candidate, clearly
        return [Verdict(None, "", f"cannot load math-verify: {describe_error(exc)}")] * len(candidates)
    try:
        with time_limit(timeout_s):
            gold = _parse_reference(reference)
    except Deadline:
        return [Verdict(None, "", f"parsing the reference timed out after {timeout_s}s")] * len(candidates)
    except Exception as exc:  # noqa: BLE001 - any failure becomes this sample's error
        return [Verdict(None, "", f"reference: {describe_error(exc)}")] * len(candidates)
    if not gold:
        return [Verdict(None, "", "the reference has no math answer math-verify can parse")] * len(candidates)
    out = []
    for candidate in candidates:
        try:
            with time_limit(timeout_s):
                out.append(_judge_parsed(gold, candidate, max_chars))
        except Deadline:
            out.append(Verdict(None, "", f"math-verify timed out after {timeout_s}s"))
        except Exception as exc:  # noqa: BLE001 - any failure becomes this response's error
            out.append(Verdict(None, "", describe_error(exc)))
    return out


def math_verify(candidate: str, reference: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> float:
    """1.0 if the candidate's final answer equals the reference mathematically, else 0.0.

    Raises ValueError for an unparseable reference and TimeoutError past `timeout_s` (enforced
    only in a main thread; elsewhere math-verify runs without a limit).
    """
    verdict = judge_sample(reference, [candidate], timeout_s, DEFAULT_MAX_CHARS)[0]
    if verdict.error is None:
        return verdict.score
    raise (TimeoutError if "timed out" in verdict.error else ValueError)(verdict.error)


# --- batches, through the process pool ---------------------------------------------------------


def _judge_chunk(chunk: list[Job], timeout_s: float, max_chars: int) -> list[list[Verdict]]:
    """Scores a chunk; runs in a worker process's main thread, where SIGALRM works."""
    return [judge_sample(reference, candidates, timeout_s, max_chars) for reference, candidates in chunk]


def judge_batch(
    jobs: Sequence[Job],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_chars: int = DEFAULT_MAX_CHARS,
    workers: int = 2,
    chunk_size: int = 32,
    worker_fn: ChunkJudge = _judge_chunk,
) -> list[list[Verdict]]:
    """Verdicts for every job, computed in worker processes (each imports math-verify before its
    first task); never raises, never loses a job. `worker_fn` (a picklable module-level
    function) replaces the scoring, e.g. in tests that make a worker hang or crash."""
    return math_verify_pool.judge_batch(
        jobs,
        worker_fn=worker_fn,
        warm_up=_api,
        timeout_s=timeout_s,
        max_chars=max_chars,
        workers=workers,
        chunk_size=chunk_size,
    )


# --- the reward -------------------------------------------------------------------------------


def _to_score(verdict: Verdict) -> ResponseScore:
    if verdict.error is not None:
        return ResponseScore(score=None, error=verdict.error)
    return ResponseScore(score=verdict.score, reason=verdict.reason)


@register(
    "math_verify",
    tags=("math",),
    description="1 if the response's final answer equals the reference mathematically (math-verify), else 0.",
)
class MathVerify(PointwiseReward):
    timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, gt=0)
    max_chars: int = Field(default=DEFAULT_MAX_CHARS, ge=1)
    # Worker processes for batches; 0 scores inline in this process (time limit in the main
    # thread only).
    workers: int = Field(default_factory=lambda: min(2, os.cpu_count() or 1), ge=0)
    chunk_size: int = Field(default=32, ge=1)
    # Batches up to this many samples, called from the main thread, skip the pool.
    inline_batch_max: int = Field(default=4, ge=0)

    def _unversioned_fields(self) -> set[str]:
        return {"workers", "chunk_size", "inline_batch_max"}

    def applies_to(self, sample: Sample) -> bool:
        return sample.reference is not None

    def _job(self, sample: Sample) -> Job:
        if sample.reference is None:
            raise ValueError(f"sample {sample.id} has no reference answer")
        # Cut before pickling: only the tail is parsed anyway.
        return sample.reference, tuple(r.text[-self.max_chars :] for r in sample.responses)

    def _score(self, sample: Sample) -> list[ResponseScore]:
        reference, candidates = self._job(sample)
        if in_main_thread() or self.workers == 0:
            verdicts = judge_sample(reference, candidates, self.timeout_s, self.max_chars)
        else:  # SIGALRM is unavailable here: keep the time limit by going through the pool
            verdicts = self._judge([(reference, candidates)])[0]
        return [_to_score(v) for v in verdicts]

    def _judge(self, jobs: Sequence[Job]) -> list[list[Verdict]]:
        return judge_batch(
            jobs,
            timeout_s=self.timeout_s,
            max_chars=self.max_chars,
            workers=self.workers,
            chunk_size=self.chunk_size,
        )

    def evaluate_batch(
        self, samples: Sequence[Sample], *, max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    ) -> list[RewardResult]:
        label = (self.name, self.version)
        if self.workers == 0 or (in_main_thread() and len(samples) <= self.inline_batch_max):
            return [self._evaluate_sync(sample, label) for sample in samples]
        results: list[RewardResult | None] = [None] * len(samples)
        jobs, positions = [], []
        for position, sample in enumerate(samples):
            try:
                jobs.append(self._job(sample))
                positions.append(position)
            except Exception as exc:  # noqa: BLE001 - a bad sample is its own error; the batch goes on
                results[position] = self._result(sample, None, describe_error(exc), label)
        for position, verdicts in zip(positions, self._judge(jobs)):
            sample = samples[position]
            results[position] = self._checked(sample, [_to_score(v) for v in verdicts], label)
        return results

    async def aevaluate_batch(
        self, samples: Sequence[Sample], *, max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    ) -> list[RewardResult]:
        # The pool does the work; a thread keeps the event loop free while it waits.
        return await asyncio.to_thread(self.evaluate_batch, samples)
