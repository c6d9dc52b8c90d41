"""Crashes: `kill -9` (SIGKILL to the whole process group) in the middle of a warehouse write or of
training leaves nothing half done.

- A partition being rewritten (rule_scores, training_pairs) holds the old version or the new one,
  row for row, with the matching content version: never half of each. A benchmark report being
  written for the first time is absent or whole (its scores and its summary row together).
- Training killed after some checkpoints resumes from the newest one (not step 0) and ends with
  the weights of an uninterrupted run.

The kill lands inside the real `Store` write method: a child process builds a large batch, prints
a marker, calls the method; the test waits for the marker, then for the warehouse file lock (held
only while the write's connection is open), sleeps a chosen offset and kills the child's group while
the lock is still held. No hook in production code.

A killed Dagster run being marked FAILURE and its re-execution completing (under `rmforge run` and
under `dagster dev`) is tests/test_run_monitoring.py; not repeated here.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import filelock
import pytest

from tests.support.dagster_dev import ROOT, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

PARTITION = "crash_ds"
# Kill this long after the write had held the lock for 0.15 s: at once (always inside the write),
# then later (mid-insert, commit or close, or just after it: a whole new version is fine too).
KILL_OFFSETS_S = (0.0, 0.1, 0.3)
AT_RELEASE = -1.0  # kill when the write releases the lock

# The child: one real Store write of `n` rows tagged `version`, between two markers on stdout.
CHILD = r"""
import json, sys
from rm_resources.store import Store

database, kind, version, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
store = Store(database)
run_id = f"run-{version}"
if kind == "scores":
    from rm_rewards.core.schema import ChatMessage, Response, RewardResult, ResponseScore, Sample
    samples = [Sample(id=f"s{i}", source="crash", input=[ChatMessage(role="user", content=f"q{i} {version}")],
                      responses=[Response(message=ChatMessage(role="assistant", content="a"))]) for i in range(n)]
    rewards = [f"r{j}" for j in range(10)]
    results = [RewardResult(reward_name=name, sample_id=s.id, scores=[ResponseScore(score=float(i % 7), reason=version)])
               for name in rewards for i, s in enumerate(samples)]
    print("WRITING", flush=True)
    frame = store.write_scores("rule_scores", "crash_ds", results, samples, run_id)
    print("DONE", json.dumps({"rows": len(frame)}), flush=True)
elif kind == "pairs":
    from rm_rewards.core.schema import ChatMessage, Response
    from rm_rewards.curation.curate import TrainingPairRecord
    def reply(text):
        return Response(message=ChatMessage(role="assistant", content=text))
    records = [TrainingPairRecord(pair_id=f"p{i}-{version}", split="train", reason="human", decision="kept",
                                  context=[ChatMessage(role="user", content=f"q{i}")], chosen=reply(f"good {version}"),
                                  rejected=reply("bad"), sample_ids=[f"s{i}"], raw_row_indices=[i % 10])
               for i in range(n)]
    # This process's first connection (schema check) is slow: have it before the marker, so the
    # method's own short read of the raw row hashes is not taken for its write.
    store.raw_row_hashes("crash_ds")
    print("WRITING", flush=True)
    pair_version = store.write_training_pairs("crash_ds", records, "policy-" + version, run_id)
    print("DONE", json.dumps({"rows": n, "version": pair_version}), flush=True)
elif kind == "bench":
    from rm_rewards.benchmarks.evaluate import evaluate
    from rm_rewards.benchmarks.loaders import load_benchmark
    result = evaluate("rm_bench", load_benchmark("rm_bench"),
                      lambda samples: [[float(len(r.text)) for r in s.responses] for s in samples], model_key="reward:len")
    rows = [row.model_copy(update={"item_id": f"{row.item_id}#{k}"}) for k in range(n // len(result.scores) + 1)
            for row in result.scores][:n]
    result = result.model_copy(update={"scores": rows})
    print("WRITING", flush=True)
    store.write_benchmark_report("rm_bench_report", "crash_ds", result, status="ok", note="", run_id=run_id)
    print("DONE", json.dumps({"rows": n}), flush=True)
"""


def _lock_held(database: Path) -> bool:
    probe = filelock.FileLock(str(database) + ".lock")
    try:
        probe.acquire(timeout=0)
    except filelock.Timeout:
        return True
    probe.release()
    return False


def _wait_for_a_long_hold(database: Path, child: subprocess.Popen, hold_s: float = 0.15) -> bool:
    """Until the child has held the warehouse lock for `hold_s` on end: its write, not the short
    read write_training_pairs does first (the raw row hashes). False when the child finished first
    (its write was shorter than the probe could see, or the probe lost the CPU meanwhile)."""
    deadline, held_since = time.monotonic() + 120, None
    while time.monotonic() < deadline:
        if child.poll() is not None:
            return False
        if _lock_held(database):
            held_since = held_since or time.monotonic()
            if time.monotonic() - held_since >= hold_s:
                return True
        else:
            held_since = None
        time.sleep(0.002)
    raise AssertionError("the child never held the warehouse lock")


def _write(database: Path, kind: str, version: str, n: int, kill_after_s: float | None,
           hold_s: float = 0.15) -> dict:
    """Run the child; with `kill_after_s`, SIGKILL its group that long after its write took the
    lock. Returns {"landed": the lock was held at the kill, "done": the child's DONE payload}.
    A child that finished before the kill could be aimed (it wrote the new version whole) is run
    again, up to 3 times, so the kill lands inside a write; the state is old-or-new whole throughout
    (a benchmark report appends its summary: its test retries in a new warehouse instead)."""
    for _attempt in range(2):
        outcome = _write_once(database, kind, version, n, kill_after_s, hold_s=hold_s)
        if kill_after_s is None or outcome is not None:
            return outcome
    return _write_once(database, kind, version, n, kill_after_s, finished_is_an_outcome=True, hold_s=hold_s)


def _write_once(database: Path, kind: str, version: str, n: int, kill_after_s: float | None,
                finished_is_an_outcome: bool = False, hold_s: float = 0.15) -> dict | None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(database), kind, version, str(n)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    try:
        if kill_after_s is None:
            out, err = child.communicate(timeout=180)
            assert child.returncode == 0, err[-3000:]
            return {"landed": False, "done": json.loads(out.split("DONE", 1)[1])}
        line = child.stdout.readline()
        assert line.startswith("WRITING"), line + child.stderr.read()[-3000:]
        if not _wait_for_a_long_hold(database, child, hold_s):
            out = child.stdout.read()
            child.wait(timeout=30)
            if not finished_is_an_outcome:
                return None
            return {"landed": False, "done": json.loads(out.split("DONE", 1)[1]) if "DONE" in out else None}
        if kill_after_s == AT_RELEASE:
            # The moment the write lets go of the lock: were it two transactions, between them.
            wait_until(lambda: not _lock_held(database) or child.poll() is not None, 120, "the lock's release", 0.0005)
        else:
            time.sleep(kill_after_s)
        landed = child.poll() is None and _lock_held(database)
        with contextlib.suppress(ProcessLookupError):  # it may have finished meanwhile
            os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        out = child.stdout.read()
        return {"landed": landed, "done": json.loads(out.split("DONE", 1)[1]) if "DONE" in out else None}
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
        child.stdout.close()
        child.stderr.close()


def _store(database: Path):
    from rm_resources.store import Store

    # A short lock timeout: a kill that left the lock held would fail here, not hang.
    return Store(str(database), lock_timeout_s=10)


def test_a_killed_score_write_leaves_the_old_or_the_new_partition(tmp_path):
    database = tmp_path / "rmforge.duckdb"
    n_old, n_new = 300, 6_000  # samples; 10 rewards each
    _write(database, "scores", "old", n_old, None)
    store = _store(database)
    old = store.read_partition("rule_scores", PARTITION, order_by="sample_id")
    assert len(old) == n_old * 10

    began = time.monotonic()
    rounds = []
    for offset in KILL_OFFSETS_S:
        # No pre-read in this write (the frame is built before the lock is taken): the lock is the
        # write from the moment it is taken. A 0.15 s probe missed it on CI's idle machine, each try.
        outcome = _write(database, "scores", "new", n_new, kill_after_s=offset, hold_s=0.0)
        rows, runs = store.rows_and_runs("rule_scores", PARTITION)
        # Old or new, whole: one run's rows and exactly its count; the old one is the same table.
        assert (rows, runs) in ((n_old * 10, ["run-old"]), (n_new * 10, ["run-new"])), (offset, rows, runs)
        if runs == ["run-old"]:
            again = store.read_partition("rule_scores", PARTITION, order_by="sample_id")
            assert again.to_json() == old.to_json()
        else:
            assert outcome["done"] is None or outcome["done"]["rows"] == n_new * 10
        rounds.append({"offset": offset, "landed": outcome["landed"], "holds": runs[0]})
        if runs != ["run-old"]:
            _write(database, "scores", "old", n_old, None)  # back to the old version for the next kill
    assert rounds[0]["landed"], f"the first kill missed the write: {rounds}"
    assert _store(database).count_by_partition("rule_scores") == {PARTITION: n_old * 10}
    print(f"rule_scores: {len(rounds)} kills ({sum(r['landed'] for r in rounds)} inside the write) "
          f"survived in {time.monotonic() - began:.1f}s: {rounds}")


def test_a_killed_training_pairs_write_leaves_the_old_or_the_new_partition(tmp_path):
    database = tmp_path / "rmforge.duckdb"
    store = _store(database)
    store.write_raw_rows(PARTITION, [{"i": i} for i in range(10)], "run-raw")
    n_old, n_new = 200, 100_000  # large enough that the write outlasts the probe on an idle machine
    old_version = _write(database, "pairs", "old", n_old, None)["done"]["version"]
    assert store.training_pairs_version(PARTITION) == old_version

    began = time.monotonic()
    rounds, new_version = [], None
    for offset in KILL_OFFSETS_S:
        outcome = _write(database, "pairs", "new", n_new, kill_after_s=offset)
        rows, runs = store.rows_and_runs("training_pairs", PARTITION)
        assert (rows, runs) in ((n_old, ["run-old"]), (n_new, ["run-new"])), (offset, rows, runs)
        version = store.training_pairs_version(PARTITION)
        if runs == ["run-old"]:
            assert version == old_version  # downstream's data version is the old one's
        else:
            new_version = new_version or version
            assert version == new_version
        rounds.append({"offset": offset, "landed": outcome["landed"], "holds": runs[0]})
        if runs != ["run-old"]:
            _write(database, "pairs", "old", n_old, None)
    assert rounds[0]["landed"], f"the first kill missed the write: {rounds}"
    # A whole new version, where one landed, is what an uninterrupted write stores.
    done = _write(database, "pairs", "new", n_new, None)["done"]
    assert new_version in (None, done["version"]) and store.training_pairs_version(PARTITION) == done["version"]
    print(f"training_pairs: {len(rounds)} kills ({sum(r['landed'] for r in rounds)} inside the write) "
          f"survived in {time.monotonic() - began:.1f}s: {rounds}")


def test_a_killed_benchmark_report_is_absent_or_whole(tmp_path):
    n = 150_000
    began = time.monotonic()
    rounds = []
    for offset in (*KILL_OFFSETS_S, AT_RELEASE, AT_RELEASE):
        # A first report each time (absent before), in a new warehouse; tried again in another when
        # the child finished before the kill could be aimed (an idle machine writes it in ~0.1 s).
        for attempt in range(3):
            database = tmp_path / f"bench-{len(rounds)}-{attempt}.duckdb"
            # No pre-read in this write: the lock is the write from the moment it is taken.
            outcome = _write_once(database, "bench", "new", n, kill_after_s=offset,
                                  finished_is_an_outcome=True, hold_s=0.0)
            store = _store(database)
            scores = store.rows_and_runs("benchmark_scores", PARTITION, asset="rm_bench_report")
            summaries = store.rows_and_runs("benchmark_summaries", PARTITION)
            # The scores and the summary row land together: a report without its summary would be
            # skipped by the leaderboard and compared against the wrong previous report.
            assert (scores, summaries) in (((0, []), (0, [])), ((n, ["run-new"]), (1, ["run-new"]))), \
                (offset, scores, summaries)
            if outcome["landed"]:
                break
        rounds.append({"offset": offset, "landed": outcome["landed"], "whole": scores[0] == n})
    assert rounds[0]["landed"], f"the first kill missed the write: {rounds}"
    print(f"benchmark report: {len(rounds)} kills survived in {time.monotonic() - began:.1f}s: {rounds}")


# --- training ---------------------------------------------------------------------------------

TRAIN_CHILD = r"""
import sys
from training.bt_trainer import train
from training.config import BTTrainConfig
from tests.support.tiny import toy_preference_samples
config = BTTrainConfig.model_validate_json(sys.argv[1])
train(config, toy_preference_samples(n_topics=40, n_test=4))
"""


def _train_config(backbone: Path, output: Path, **overrides):
    from training.config import BTTrainConfig

    return BTTrainConfig(**{
        "model_path": str(backbone), "max_length": 32, "batch_size": 2, "learning_rate": 5e-3, "epochs": 1,
        "max_steps": 18, "log_every_steps": 1, "save_every_steps": 1, "eval_before_training": False,
        "output_dir": str(output), "num_threads": 1, **overrides,
    })


def _run_training(config, kill_at_step: int | None = None) -> subprocess.Popen:
    child = subprocess.Popen(
        [sys.executable, "-c", TRAIN_CHILD, config.model_dump_json()], cwd=ROOT, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
    )
    if kill_at_step is None:
        _, err = child.communicate(timeout=180)
        assert child.returncode == 0, err[-3000:]
        return child
    from training.bt_trainer import read_metrics

    def reached():
        assert child.poll() is None, f"training ended before the kill:\n{child.stderr.read()[-3000:]}"
        return any(r["kind"] == "step" and r["step"] >= kill_at_step for r in read_metrics(config.output_dir))

    wait_until(reached, 150, f"training to pass step {kill_at_step}", 0.01)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    child.stderr.close()
    return child


def test_killed_training_resumes_from_the_last_checkpoint_and_matches_an_uninterrupted_run(tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification

    from tests.support.tiny import make_tiny_backbone
    from training.bt_trainer import TRAINER_STATE_FILE, latest_checkpoint, read_metrics

    backbone = make_tiny_backbone(tmp_path / "tiny", "bert")
    began = time.monotonic()
    straight = _train_config(backbone, tmp_path / "straight")
    _run_training(straight)

    killed = _train_config(backbone, tmp_path / "killed", resume_from_checkpoint="latest")
    _run_training(killed, kill_at_step=9)
    assert not (tmp_path / "killed" / "final").exists()
    checkpoint = latest_checkpoint(killed.output_dir)
    assert checkpoint is not None and (checkpoint / TRAINER_STATE_FILE).exists()
    resumed_from = int(checkpoint.name.split("-")[-1])
    assert resumed_from >= 8, checkpoint
    steps_before = [r["step"] for r in read_metrics(killed.output_dir) if r["kind"] == "step"]

    _run_training(killed)  # the rerun: same command, resume_from_checkpoint="latest"
    steps_after = [r["step"] for r in read_metrics(killed.output_dir) if r["kind"] == "step"][len(steps_before):]
    # It went on from the checkpoint, not from step 0.
    assert steps_after == list(range(resumed_from + 1, 19)), (resumed_from, steps_after)

    a = AutoModelForSequenceClassification.from_pretrained(tmp_path / "straight" / "final").state_dict()
    b = AutoModelForSequenceClassification.from_pretrained(tmp_path / "killed" / "final").state_dict()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-5, msg=name)
    print(f"training killed after step {steps_before[-1]} resumed from checkpoint {resumed_from}, "
          f"final weights equal the uninterrupted run's (atol 1e-5); {time.monotonic() - began:.1f}s")
