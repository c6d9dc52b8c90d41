"""math_verify: known answers (GSM8K finals, LaTeX forms), and a batch path that works from any
thread, spreads over worker processes and survives a worker that hangs or dies."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from rm_rewards.core import registry
from rm_rewards.core.schema import ChatMessage, Response, Sample
from rm_rewards.datasets.bundled import bundled_path
from rm_rewards.rules import math as math_rules
from rm_rewards.rules import math_verify_pool
from rm_rewards.rules.math import MathVerify, gsm8k_final_answer, judge_batch, math_verify

PROJECT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_sample(sample_id: str, reference: str | None, *responses: str) -> Sample:
    return Sample(
        id=sample_id,
        source="test",
        input=[ChatMessage(role="user", content="Solve it.")],
        responses=[Response(message=ChatMessage(role="assistant", content=r)) for r in responses],
        reference=reference,
    )


def _gsm8k_rows(n: int) -> list[dict]:
    with open(bundled_path("gsm8k", "test.jsonl"), encoding="utf-8") as handle:
        return [json.loads(line) for _, line in zip(range(n), handle)]


def _wrong_by_one(solution: str) -> str:
    final = gsm8k_final_answer(solution)
    return solution.rsplit("####", 1)[0] + f"#### {int(float(final)) + 1}"


@pytest.fixture(scope="module")
def gsm8k_samples() -> list[Sample]:
    """Per GSM8K row: the gold solution (right), the same with the final answer off by one
    (wrong), and the bare final answer in \\boxed{} (right)."""
    samples = []
    for k, row in enumerate(_gsm8k_rows(24)):
        final = gsm8k_final_answer(row["answer"])
        samples.append(
            make_sample(
                f"gsm8k-{k}",
                final,
                row["answer"],
                _wrong_by_one(row["answer"]),
                f"So the answer is $\\boxed{{{final}}}$.",
            )
        )
    return samples


def _assert_known_answers(results, samples) -> None:
    assert [r.sample_id for r in results] == [s.id for s in samples]
    for result in results:
        assert result.error is None, result.error
        assert [s.error for s in result.scores] == [None, None, None], result.sample_id
        assert result.values() == [1.0, 0.0, 1.0], result.sample_id


def test_gsm8k_final_answer_reads_the_hash_line() -> None:
    assert gsm8k_final_answer("so 3 + 4 = 7\n#### 1,234") == "1234"
    with pytest.raises(ValueError, match="####"):
        gsm8k_final_answer("no final line")


@pytest.mark.parametrize(
    ("candidate", "reference", "expected"),
    [
        ("The answer is \\frac{1}{2}.", "0.5", 1.0),
        ("The answer is 0.5", "\\frac{1}{2}", 1.0),
        ("Therefore $\\boxed{\\frac{3}{4}}$", "0.75", 1.0),
        ("We get \\boxed{(x+1)^2}", "x^2+2x+1", 1.0),
        ("The total is 1000 dollars", "1,000", 1.0),
        ("The answer is \\boxed{\\frac{1}{3}}", "0.5", 0.0),
        ("I think it is 17", "18", 0.0),
        ("I cannot solve this.", "18", 0.0),
    ],
)
def test_bare_math_verify_known_answers(candidate: str, reference: str, expected: float) -> None:
    assert math_verify(candidate, reference) == expected


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("<think>150 + 50 for the trip</think>\n<answer>100</answer>", 1.0),
        ("<think>the total is $100</think>\n<answer>1000</answer>", 0.0),  # the tag decides
        ("#### 100\nQuestions? Call (387) 331-8170.", 1.0),  # numbers after the answer are ignored
        ("The answer is 100. Questions? Call (387) 331-8170.", 1.0),  # math-verify's "answer" anchor
    ],
)
def test_the_stated_final_answer_wins_over_later_numbers(candidate: str, expected: float) -> None:
    assert math_verify(candidate, "100") == expected


def test_bare_math_verify_rejects_a_reference_without_math() -> None:
    with pytest.raises(ValueError, match="reference"):
        math_verify("42", "")


def test_gsm8k_references_also_accept_the_full_solution_as_reference() -> None:
    row = _gsm8k_rows(1)[0]
    assert math_verify("#### 18", row["answer"]) == 1.0


def test_registered_with_tag_and_needs_a_reference() -> None:
    spec = registry.spec("math_verify")
    assert "math" in spec.tags and spec.kind == "pointwise" and not spec.is_llm
    reward = registry.get("math_verify")
    assert not reward.applies_to(make_sample("no-ref", None, "42"))
    result = reward.evaluate(make_sample("no-ref", None, "42"))
    assert result.error and "no-ref" in result.error and result.scores == []


def test_single_evaluate_in_the_main_thread(gsm8k_samples: list[Sample]) -> None:
    reward = MathVerify()
    result = reward.evaluate(gsm8k_samples[0])
    assert result.values() == [1.0, 0.0, 1.0]
    assert "matches" in result.scores[0].reason and "does not match" in result.scores[1].reason


def test_batch_over_worker_processes_scores_every_sample(gsm8k_samples: list[Sample]) -> None:
    reward = MathVerify(workers=2, inline_batch_max=0)
    _assert_known_answers(reward.evaluate_batch(gsm8k_samples), gsm8k_samples)


def test_batch_from_a_worker_thread_is_not_all_errors(gsm8k_samples: list[Sample]) -> None:
    # The seed's failure: SIGALRM cannot be set outside the main thread, so every sample erred.
    reward = MathVerify(workers=2)
    out: dict[str, object] = {}

    def work() -> None:
        out["batch"] = reward.evaluate_batch(gsm8k_samples)
        out["single"] = reward.evaluate(gsm8k_samples[1])

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive()
    _assert_known_answers(out["batch"], gsm8k_samples)
    _assert_known_answers([out["single"]], gsm8k_samples[1:2])


def test_inline_mode_from_a_thread_runs_without_a_time_limit(gsm8k_samples: list[Sample]) -> None:
    reward = MathVerify(workers=0)
    out = []
    thread = threading.Thread(target=lambda: out.extend(reward.evaluate_batch(gsm8k_samples[:3])))
    thread.start()
    thread.join(timeout=60)
    _assert_known_answers(out, gsm8k_samples[:3])


def test_async_batch_inside_a_running_loop(gsm8k_samples: list[Sample]) -> None:
    reward = MathVerify(workers=2, inline_batch_max=0)

    async def main():
        return await reward.aevaluate_batch(gsm8k_samples[:6]), reward.evaluate_batch(gsm8k_samples[6:9])

    async_results, sync_results = asyncio.run(main())
    _assert_known_answers(async_results, gsm8k_samples[:6])
    _assert_known_answers(sync_results, gsm8k_samples[6:9])


def test_a_bad_sample_in_a_batch_is_its_own_error(gsm8k_samples: list[Sample]) -> None:
    batch = [
        gsm8k_samples[0],
        make_sample("no-ref", None, "42"),
        make_sample("junk-ref", "", "42"),
        gsm8k_samples[1],
    ]
    results = MathVerify(workers=2, inline_batch_max=0).evaluate_batch(batch)
    assert results[0].values() == [1.0, 0.0, 1.0] and results[3].values() == [1.0, 0.0, 1.0]
    assert results[1].error and "no-ref" in results[1].error
    assert results[2].scores[0].score is None and "reference" in results[2].scores[0].error


def _cold_python(code: str) -> dict:
    """Run `code` in a fresh interpreter (nothing imported yet) and return the JSON it prints."""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


_CALIBRATE = """
import json, sys, time
from rm_rewards.rules import math as m
assert "sympy" not in sys.modules
t0 = time.perf_counter()
parse, _, latex_only, _ = m._api()
parse("\\\\boxed{1}", latex_only, parsing_timeout=None)  # the first LaTeX parse builds the parser
t1 = time.perf_counter()
verdicts = m.judge_sample("18", ["so 3 * 6 = 18\\n#### 18"], 30.0, 4000)
t2 = time.perf_counter()
assert verdicts[0].score == 1.0, verdicts
print(json.dumps({"cold_start_s": t1 - t0, "verify_s": t2 - t1}))
"""

_COLD_INLINE_BATCH = """
import json, sys
from rm_rewards.core.schema import ChatMessage, Response, Sample
from rm_rewards.rules.math import MathVerify
sample = Sample(id="cold", source="test", input=[ChatMessage(role="user", content="Solve it.")],
                responses=[Response(message=ChatMessage(role="assistant", content="so 3 * 6 = 18\\n#### 18"))],
                reference="18")
imported_before = "sympy" in sys.modules
# One sample: judged inline in this (main) thread, under a limit shorter than importing sympy.
[result] = MathVerify(timeout_s=LIMIT).evaluate_batch([sample])
print(json.dumps({"imported_before": imported_before, "error": result.scores[0].error,
                  "score": result.scores[0].score}))
"""


def test_a_cold_process_imports_math_verify_before_the_time_limit_starts() -> None:
    # A batch of <= inline_batch_max samples is judged inline; in a fresh process the first
    # sample used to pay sympy's import and the LaTeX parser's construction (~0.5 s, seconds
    # under load) inside its time limit.
    cold = _cold_python(_CALIBRATE)
    start, verify = cold["cold_start_s"], cold["verify_s"]
    if start < 10 * verify:
        pytest.skip(f"no gap between a cold start ({start:.3f}s) and one warm verify ({verify:.3f}s)")
    # Geometric mean: well above one warm verify, well below the cold start (imports + parser).
    limit = (start * verify) ** 0.5
    out = _cold_python(_COLD_INLINE_BATCH.replace("LIMIT", repr(limit)))
    assert out["imported_before"] is False  # the import really happens inside evaluate_batch
    assert out["error"] is None, f"limit {limit:.3f}s, calibration {cold}: {out['error']}"
    assert out["score"] == 1.0


def test_time_limit_in_the_main_thread_restores_the_callers_alarm() -> None:
    fired = []

    def callers_handler(signum, frame):
        fired.append(signum)

    previous = signal.signal(signal.SIGALRM, callers_handler)
    signal.setitimer(signal.ITIMER_REAL, 30)
    try:
        with pytest.raises(math_verify_pool.Deadline), math_verify_pool.time_limit(0.05):
            time.sleep(1)
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 25 < remaining <= 30  # the caller's alarm is running again
        assert signal.getsignal(signal.SIGALRM) is callers_handler
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert fired == []


# --- worker failures: these functions run inside the spawned workers ------------------------


def hang_or_crash_on_marker(chunk, timeout_s, max_chars):
    """Scores normally, except: reference "HANG" blocks SIGALRM and sleeps (a hang no time
    limit can interrupt); reference "CRASH" kills the worker process."""
    for reference, _ in chunk:
        if reference == "HANG":
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            time.sleep(600)
        if reference == "CRASH":
            os._exit(3)
    return math_rules._judge_chunk(chunk, timeout_s, max_chars)


@pytest.mark.parametrize("marker", ["HANG", "CRASH"])
def test_a_hung_or_crashed_worker_costs_only_its_own_sample(marker: str) -> None:
    jobs = [("18", ("#### 18",)), (marker, ("1",)), ("7", ("the answer is 7",)), ("2", ("\\boxed{3}",))]
    jobs += [("5", ("5",))] * 6
    started = time.monotonic()
    verdicts = judge_batch(jobs, timeout_s=0.5, workers=2, chunk_size=4, worker_fn=hang_or_crash_on_marker)
    assert time.monotonic() - started < 90
    assert [v[0].score for k, v in enumerate(verdicts) if k != 1] == [1.0, 1.0, 0.0] + [1.0] * 6
    assert all(v[0].error is None for k, v in enumerate(verdicts) if k != 1)
    failed = verdicts[1][0]
    assert failed.score is None
    assert ("hung" if marker == "HANG" else "failed") in failed.error
    # The pool recovers: the next batch runs on fresh workers.
    assert judge_batch([("4", ("2+2 = 4",))], workers=2)[0][0].score == 1.0
