"""Rule rewards, rmforge against rm-gallery 0.1.7, on the same samples in one run.

    .venv/bin/python bench/rule_rewards.py [--n 10000] [--repeat 3] [--skip-peer]

Builds `--n` deterministic samples from GSM8K (a reference solution and two responses each:
paraphrased, right or wrong final answers, some in <think>/<answer> tags, some leaking emails or
phone numbers, some repetitive, some far too short or too long), writes them to a JSONL file,
and times three things per reward, each the best of `--repeat` runs:

- rmforge: `rm_rewards.core.registry.get(name).evaluate_batch(samples)` inside `kinds.gc_paused()`,
  as the rule_scores asset runs it;
- bare: the rule module's scoring function called in a plain loop over (response, reference)
  pairs, i.e. the floor any framework adds to;
- rm-gallery: its `evaluate_batch` (default `max_workers=8`), run by `bench/rm_gallery_peer.py`
  inside `.venvs/rm-gallery` (build it with `bench/setup_rm_gallery_venv.sh`) on the same file.

Prints samples/s per reward and overall, rmforge's overhead over the bare loop, the ratio to
rm-gallery, and error counts; for math verification also how many samples each system judged
correctly against the known truth of the generator.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

from rm_rewards.core import registry
from rm_rewards.core.kinds import Reward, gc_paused
from rm_rewards.core.schema import ChatMessage, Response, RewardResult, Sample
from rm_rewards.datasets.bundled import bundled_path

PEER_PYTHON = REPO_ROOT / ".venvs" / "rm-gallery" / "bin" / "python"
PEER_SCRIPT = REPO_ROOT / "bench" / "rm_gallery_peer.py"
OUT_DIR = REPO_ROOT / "bench" / "out"
MATH_REWARD = "math_verify"

# --- the deterministic sample generator --------------------------------------------------------

_CALCULATOR_NOTE = re.compile(r"<<[^>]*>>")
_FIRST_NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy")
_DOMAINS = ("example.com", "mail.example.org", "school.edu", "company.co.uk")
_FILLERS = (
    "Let's think step by step.",
    "First, let me restate the problem.",
    "We need to be careful with the units here.",
    "This is a straightforward calculation.",
    "Let me double-check the arithmetic.",
    "So far so good.",
)


@dataclass(frozen=True)
class Problem:
    question: str
    steps: tuple[str, ...]
    answer: str


def load_problems() -> list[Problem]:
    problems = []
    with bundled_path("gsm8k", "test.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            body, _, final = row["answer"].rpartition("####")
            steps = tuple(s.strip() for s in _CALCULATOR_NOTE.sub("", body).splitlines() if s.strip())
            problems.append(Problem(row["question"], steps, final.strip().replace(",", "")))
    return problems


def wrong_answer(answer: str, rng: random.Random) -> str:
    """A plausible wrong final answer: off by a little, by a factor of ten, or digits swapped."""
    value = float(answer)
    choice = rng.randrange(3)
    if choice == 0:
        wrong = value + rng.choice((-2, -1, 1, 2, 5))
    elif choice == 1:
        wrong = value * 10
    else:
        digits = answer.lstrip("-")
        wrong = float(digits[::-1]) + (1 if digits == digits[::-1] else 0)
    return str(int(wrong)) if wrong == int(wrong) else str(wrong)


def paraphrase(step: str, rng: random.Random) -> str:
    """Drop and lowercase a few words: similar to the reference, not equal to it."""
    words = step.split()
    kept = [w for w in words if rng.random() > 0.12] or words
    return " ".join(w.lower() if rng.random() < 0.2 else w for w in kept)


def private_details(rng: random.Random) -> str:
    name = rng.choice(_FIRST_NAMES)
    email = f"{name}.{rng.randrange(10, 99)}@{rng.choice(_DOMAINS)}"
    phone = f"({rng.randrange(200, 999)}) {rng.randrange(200, 999)}-{rng.randrange(1000, 9999)}"
    extra = rng.choice((
        "",
        f" My server is at 203.0.{rng.randrange(0, 255)}.{rng.randrange(1, 255)}.",
        f" Card: 4111 {rng.randrange(1000, 9999)} {rng.randrange(1000, 9999)} {rng.randrange(1000, 9999)}.",
    ))
    return f"If you have questions, write to {email} or call {phone}.{extra}"


def final_line(answer: str, rng: random.Random) -> str:
    return rng.choice((
        f"The answer is {answer}.",
        f"#### {answer}",
        f"So the final answer is $\\boxed{{{answer}}}$.",
        f"Therefore, the result is {answer}.",
    ))


def make_response(problem: Problem, correct: bool, rng: random.Random) -> str:
    answer = problem.answer if correct else wrong_answer(problem.answer, rng)
    steps = [paraphrase(s, rng) for s in problem.steps]
    if rng.random() < 0.3:
        steps.insert(0, rng.choice(_FILLERS))
    style = rng.random()
    if style < 0.05:  # far too short: the bare answer
        return answer
    if style < 0.15:  # repetitive: a step said over and over
        step = rng.choice(steps)
        steps = steps + [step] * rng.randrange(3, 8)
    elif style < 0.22:  # far too long: the reasoning spelled out several times
        steps = steps * rng.randrange(4, 9)
    if rng.random() < 0.1:  # inside the reasoning, so the final answer stays the last thing said
        steps.insert(rng.randrange(len(steps) + 1), private_details(rng))
    body = "\n".join(steps)
    if rng.random() < 0.25:
        tagged = f"<think>\n{body}\n</think>\n<answer>{answer}</answer>"
        if rng.random() < 0.2:  # a broken format: no closing think tag
            tagged = tagged.replace("</think>", "")
        text = tagged
    else:
        text = f"{body}\n{final_line(answer, rng)}"
    return text


def build_rows(n: int, seed: int = 0) -> list[dict]:
    """`n` benchmark rows: a question, a reference solution, two responses, and which are right."""
    rng = random.Random(seed)
    problems = load_problems()
    rows = []
    for k in range(n):
        problem = problems[rng.randrange(len(problems))]
        correct = [rng.random() < 0.6, rng.random() < 0.6]
        rows.append({
            "id": f"bench-{k}",
            "question": problem.question,
            "reference": "\n".join(problem.steps) + f"\nThe answer is {problem.answer}.",
            "responses": [make_response(problem, c, rng) for c in correct],
            "correct": correct,
        })
    return rows


def to_sample(row: dict) -> Sample:
    return Sample(
        id=row["id"],
        source="bench/gsm8k",
        input=[ChatMessage(role="user", content=row["question"])],
        responses=[Response(message=ChatMessage(role="assistant", content=t)) for t in row["responses"]],
        reference=row["reference"],
    )


def write_rows(rows: Sequence[dict], path: Path) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


# --- what is timed -----------------------------------------------------------------------------

ScoreFn = Callable[[str, str], float]


# reward name -> (rule module, bare function, whether it takes the reference as second argument).
BARE_FUNCTIONS: dict[str, tuple[str, str, bool]] = {
    "token_f1": ("rm_rewards.rules.general", "token_f1", True),
    "rouge_l": ("rm_rewards.rules.general", "rouge_l", True),
    "length_penalty": ("rm_rewards.rules.style", "length_penalty", False),
    "ngram_repetition_penalty": ("rm_rewards.rules.style", "ngram_repetition_penalty", False),
    "privacy_leakage": ("rm_rewards.rules.style", "privacy_leakage", False),
    "reasoning_format": ("rm_rewards.rules.format", "reasoning_format", False),
    "number_accuracy": ("rm_rewards.rules.general", "number_accuracy", True),
    "math_verify": ("rm_rewards.rules.math", "math_verify", True),
}


def bare_function(name: str) -> ScoreFn:
    """The module-level scoring function that reward `name` calls, as `(response, reference) -> float`."""
    module_name, attribute, takes_reference = BARE_FUNCTIONS[name]
    fn = getattr(importlib.import_module(module_name), attribute)
    return fn if takes_reference else (lambda text, _reference: fn(text))


REWARD_NAMES: tuple[str, ...] = (
    "token_f1", "rouge_l", "length_penalty", "ngram_repetition_penalty",
    "privacy_leakage", "reasoning_format", "number_accuracy", MATH_REWARD,
)


@dataclass
class Timing:
    seconds: float
    all_seconds: list[float]
    n_samples: int
    errored_samples: int = 0
    correct_samples: int | None = None
    cores: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def samples_per_s(self) -> float:
        return self.n_samples / self.seconds

    @property
    def cpu_seconds(self) -> float | None:
        """CPU seconds of the best run over all processes; steadier than wall time under load."""
        by_process = self.extra.get("cpu_seconds_by_process")
        return None if by_process is None else sum(by_process.values())


def process_cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) of this process, each live child, and the children reaped."""
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = {"main": time.process_time(), "reaped children": reaped.ru_utime + reaped.ru_stime}
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.Error:  # exited meanwhile: counted under "reaped children" once waited for
            continue
        out[f"pid {child.pid}"] = times.user + times.system
    return out


class BestOf:
    """Keeps the fastest of several timed runs: the one least disturbed by other load.

    For that run it also keeps the CPU seconds each process spent (this one and any workers),
    so a batch that claims to use several cores can be seen doing so.
    """

    def __init__(self) -> None:
        self.all_seconds: list[float] = []
        self.cpu_by_process: dict[str, float] = {}
        self.result: object = None

    def run(self, fn: Callable[[], object]) -> None:
        cpu_before, start = process_cpu_seconds(), time.perf_counter()
        self.result = fn()
        wall = time.perf_counter() - start
        if not self.all_seconds or wall < min(self.all_seconds):
            cpu_after = process_cpu_seconds()
            spent = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_after.items()}
            self.cpu_by_process = {k: round(v, 4) for k, v in spent.items() if k == "main" or v > 0.005}
        self.all_seconds.append(wall)

    def timing(self, n_samples: int, errored_samples: int = 0) -> Timing:
        best = min(self.all_seconds)
        return Timing(best, self.all_seconds, n_samples, errored_samples,
                      cores=sum(self.cpu_by_process.values()) / best,
                      extra={"cpu_seconds_by_process": self.cpu_by_process})


def math_correct(results: Sequence[RewardResult], rows: Sequence[dict]) -> int:
    """Samples whose every response got the verdict the generator knows to be true."""
    return sum(
        1 for result, row in zip(results, rows)
        if result.ok and all((s.score == 1.0) == truth for s, truth in zip(result.scores, row["correct"]))
    )


def bare_loop(fn: ScoreFn, samples: Sequence[Sample]) -> Callable[[], int]:
    """The floor: the scoring function over every (response, reference), counting raised errors."""
    pairs = [(response.message.content, sample.reference) for sample in samples for response in sample.responses]

    def loop() -> int:
        errors = 0
        for text, reference in pairs:
            try:
                fn(text, reference)
            except Exception:  # noqa: BLE001 - counted, as the framework counts them
                errors += 1
        return errors

    return loop


def large_batch(reward: Reward, samples: Sequence[Sample]) -> list[RewardResult]:
    """`evaluate_batch` as a large-batch caller runs it (rule_scores does the same): with the
    cyclic GC paused, which `evaluate_batch` leaves to its caller (see `kinds.gc_paused`)."""
    with gc_paused():
        return reward.evaluate_batch(samples)


def time_reward(name: str, samples: list[Sample], rows: list[dict], repeat: int) -> tuple[Timing, Timing]:
    """rmforge's evaluate_batch and the bare loop, alternated so that bursts of load hit both alike."""
    reward = registry.get(name)
    loop = bare_loop(bare_function(name), samples)
    mine, bare = BestOf(), BestOf()
    for _ in range(repeat):
        mine.run(lambda: large_batch(reward, samples))
        bare.run(loop)
    results = mine.result
    timing = mine.timing(len(samples), sum(1 for r in results if not r.ok))
    if name == MATH_REWARD:
        timing.correct_samples = math_correct(results, rows)
    floor = bare.timing(len(samples))
    floor.extra["errored_responses"] = bare.result
    return timing, floor


def run_peer(rows_path: Path, out_path: Path, repeat: int, log_path: Path, names: Sequence[str]) -> dict:
    """rm-gallery's figures, from its own venv; its log folder lands in a temp dir, not the repo."""
    if not PEER_PYTHON.exists():
        raise SystemExit(f"no rm-gallery venv at {PEER_PYTHON}: run bench/setup_rm_gallery_venv.sh (or --skip-peer)")
    command = [str(PEER_PYTHON), str(PEER_SCRIPT), "--input", str(rows_path), "--output", str(out_path),
               "--repeat", str(repeat), "--rewards", ",".join(names)]
    with tempfile.TemporaryDirectory() as scratch, log_path.open("w") as log:
        done = subprocess.run(command, cwd=scratch, stdout=log, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"rm-gallery peer failed (exit {done.returncode}); see {log_path}")
    return json.loads(out_path.read_text())


# --- the report --------------------------------------------------------------------------------


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def _overall(timings: dict[str, Timing], names: Sequence[str]) -> Timing | None:
    chosen = [timings[n] for n in names if n in timings]
    if len(chosen) != len(names):
        return None
    cpu = [t.cpu_seconds for t in chosen]
    extra = {} if None in cpu else {"cpu_seconds_by_process": {"all": sum(cpu)}}
    return Timing(sum(t.seconds for t in chosen), [], sum(t.n_samples for t in chosen),
                  sum(t.errored_samples for t in chosen), extra=extra)


def peer_timings(peer: dict | None) -> dict[str, Timing]:
    if not peer:
        return {}
    return {
        name: Timing(r["seconds"], r["all_seconds"], peer["n_samples"], r["errored_samples"],
                     r.get("correct_samples"), extra={"cpu_seconds_by_process": {"rm-gallery": r["cpu_seconds"]}})
        for name, r in peer["rewards"].items()
    }


def table_row(label: str, mine: Timing | None, bare: Timing | None, peer: Timing | None) -> str:
    overhead = f"{mine.seconds / bare.seconds - 1:+.0%}" if mine and bare else "—"
    cpu_overhead = f"{mine.cpu_seconds / bare.cpu_seconds - 1:+.0%}" if mine and bare and bare.cpu_seconds else "—"
    ratio = f"{mine.samples_per_s / peer.samples_per_s:.1f}×" if mine and peer else "—"
    cpu_ratio = f"{peer.cpu_seconds / mine.cpu_seconds:.1f}×" if mine and peer and mine.cpu_seconds else "—"
    errors = f"{mine.errored_samples if mine else '—'} / {peer.errored_samples if peer else '—'}"
    return (f"| {label} | {_rate(mine and mine.samples_per_s)} | {_rate(bare and bare.samples_per_s)} "
            f"| {overhead} | {cpu_overhead} | {_rate(peer and peer.samples_per_s)} | {ratio} | {cpu_ratio} "
            f"| {errors} |")


def report(mine: dict[str, Timing], bare: dict[str, Timing], peer: dict[str, Timing], n: int) -> str:
    lines = [
        (f"samples/s over {n:,} samples of 2 responses each; best of the repeats; "
         "overhead = rmforge time / bare loop time - 1, in wall time and in CPU time of all processes; "
         "ratio = rmforge / rm-gallery samples/s, and rm-gallery CPU seconds / rmforge CPU seconds"),
        "",
        ("| reward | rmforge samples/s | bare samples/s | overhead (wall) | overhead (CPU) "
         "| rm-gallery samples/s | ratio (wall) | ratio (CPU) | errored samples rmforge / rm-gallery |"),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in REWARD_NAMES:
        lines.append(table_row(name, mine.get(name), bare.get(name), peer.get(name)))
    non_math = [n for n in REWARD_NAMES if n != MATH_REWARD]
    lines.append(table_row("**overall, 7 non-math**", _overall(mine, non_math), _overall(bare, non_math),
                           _overall(peer, non_math)))
    lines.append(table_row("**overall, all 8**", _overall(mine, REWARD_NAMES), _overall(bare, REWARD_NAMES),
                           _overall(peer, REWARD_NAMES)))
    lines.append("")
    math_mine, math_peer = mine.get(MATH_REWARD), peer.get(MATH_REWARD)
    if math_mine:
        lines.append(
            f"math_verify, rmforge: {math_mine.correct_samples:,}/{n:,} samples judged correctly, "
            f"{math_mine.errored_samples:,} errored; first (cold) batch {math_mine.all_seconds[0]:.2f} s, "
            f"best {math_mine.seconds:.2f} s; {math_mine.cores:.2f} cores busy in the best batch, "
            f"CPU seconds by process: {fmt_cpu(math_mine.extra['cpu_seconds_by_process'])}"
        )
    if math_peer:
        lines.append(
            f"math_verify, rm-gallery: {math_peer.correct_samples:,}/{n:,} samples judged correctly, "
            f"{math_peer.errored_samples:,} errored"
        )
    return "\n".join(lines)


def fmt_cpu(by_process: dict[str, float]) -> str:
    return ", ".join(f"{name} {seconds:.2f}" for name, seconds in by_process.items()) or "none"


def conditions() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                            text=True, check=False).stdout.strip() or "unknown"
    return (f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load}, "
            f"git {commit}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Rule rewards: rmforge vs rm-gallery 0.1.7 on the same samples.")
    parser.add_argument("--n", type=int, default=10_000, help="number of samples (default 10000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best counts")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-peer", action="store_true", help="do not run rm-gallery")
    parser.add_argument("--rewards", default=",".join(REWARD_NAMES), help="comma-separated subset")
    args = parser.parse_args(argv)
    names = [n for n in args.rewards.split(",") if n]
    unknown = sorted(set(names) - set(REWARD_NAMES))
    if unknown:
        parser.error(f"unknown rewards {unknown}; choose from {', '.join(REWARD_NAMES)}")

    print(f"conditions at start: {conditions()}", flush=True)
    rows = build_rows(args.n, args.seed)
    samples = [to_sample(row) for row in rows]
    mine, floor = {}, {}
    for name in names:
        mine[name], floor[name] = time_reward(name, samples, rows, args.repeat)
        print(f"  rmforge {name}: {mine[name].samples_per_s:,.0f}/s, bare {floor[name].samples_per_s:,.0f}/s",
              flush=True)

    peer: dict | None = None
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    if not args.skip_peer:
        rows_path = OUT_DIR / "rule_rewards_samples.jsonl"
        write_rows(rows, rows_path)
        print("  running rm-gallery 0.1.7 on the same samples ...", flush=True)
        peer = run_peer(rows_path, OUT_DIR / "rule_rewards_peer.json", args.repeat,
                        OUT_DIR / "rule_rewards_peer.log", names)
    print(f"conditions at end: {conditions()}\n")
    print(report(mine, floor, peer_timings(peer), args.n))
    dump = {"n": args.n, "repeat": args.repeat, "seed": args.seed, "conditions": conditions(),
            "rmforge": {k: vars(v) for k, v in mine.items()}, "bare": {k: vars(v) for k, v in floor.items()},
            "rm_gallery": peer}
    (OUT_DIR / "rule_rewards.json").write_text(json.dumps(dump, indent=2))


if __name__ == "__main__":
    main()
