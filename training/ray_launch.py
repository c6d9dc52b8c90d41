"""Run the Bradley-Terry training function under Ray Train (`TorchTrainer`), on CPUs or GPUs.

Each worker runs `training.bt_trainer.run_bt_training` with a Ray `WorkerContext`: the model is
wrapped by `ray.train.torch.prepare_model` (DDP when there are several workers), metrics and
checkpoints go through `ray.train.report`, and a restarted worker group picks up the newest
reported checkpoint from `ray.train.get_checkpoint()` (optimizer, scheduler and data position
included), so `FailureConfig(max_failures=...)` resumes rather than restarts.

Local Ray on this project's 2-core machines (`training.ray_local.init_ray`: 2 CPUs, no dashboard,
a 200 MB object store), at most 2 workers with 1 CPU each.

The console is the driver's: Ray keeps the controller's and workers' output in its session log
files (`log_to_driver=False`; the path is logged when training fails) and its own logger at
WARNING, and the driver prints the run's progress from rank 0's metrics.jsonl rows
(`TrainingProgress`: a start line, step lines with ETA, eval lines, a finish line). A failing
worker still raises here, with its traceback.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rm_rewards.core.schema import Sample
from training.bt_trainer import (
    METRICS_FILE,
    RUN_INFO_FILE,
    TRAINER_STATE_FILE,
    TrainingProgress,
    TrainResult,
    WorkerContext,
    append_metrics_row,
    read_metrics,
    resolve_pairs,
    run_bt_training,
)
from training.config import BTTrainConfig
from training.data import TrainingPair
from training.ray_local import init_ray

log = logging.getLogger(__name__)

FAULT_MARKER = "injected_failure_done"


def _serialisable_data(data: Sequence[Sample | TrainingPair | str | os.PathLike]) -> list[Any]:
    """Samples and preference pairs travel to workers as JSON dicts, files as absolute paths (workers
    read them)."""
    return [
        item.model_dump(mode="json")
        if isinstance(item, (Sample, TrainingPair))
        else str(Path(item).resolve())
        for item in data
    ]


def _ray_worker_context(config: BTTrainConfig, fault: dict[str, Any] | None) -> WorkerContext:
    import ray.train
    import ray.train.torch
    import torch

    context = ray.train.get_context()
    rank = context.get_world_rank()
    metrics_path = config.output_path / METRICS_FILE

    def report(row: dict[str, Any]) -> None:
        # Rows go to metrics.jsonl only: each ray.train.report waits for the controller's next poll
        # (about 2 s), so Ray gets metrics with the checkpoints (every epoch end) instead. The
        # driver prints progress from this file (`_MetricsTail`).
        if rank == 0:  # the output dir is on this machine's disk (local Ray or a shared filesystem)
            append_metrics_row(metrics_path, row)

    def checkpoint(metrics: dict[str, Any], write: Callable[[Path], None]) -> None:
        with tempfile.TemporaryDirectory(prefix="bt-ckpt-") as scratch:
            if rank == 0:
                write(Path(scratch))
            ray.train.report(
                metrics, checkpoint=ray.train.Checkpoint.from_directory(scratch) if rank == 0 else None
            )
        _maybe_inject_failure(fault, metrics, rank)

    return WorkerContext(
        report=report,
        checkpoint=checkpoint,
        rank=rank,
        world_size=context.get_world_size(),
        device=ray.train.torch.get_device() if torch.cuda.is_available() else torch.device("cpu"),
        prepare_model=lambda model: (
            ray.train.torch.prepare_model(model) if context.get_world_size() > 1 else model
        ),
    )


def _maybe_inject_failure(fault: dict[str, Any] | None, metrics: dict[str, Any], rank: int) -> None:
    """Fault drill: kill rank 0's process once, right after the checkpoint of a given step.

    Used by the resume test; `os._exit` is what a crashed or OOM-killed worker looks like to Ray.
    A worker's report queue holds one item until the controller's next poll, and polls run one
    after another; so once two more reports have been accepted, the poll that carried the
    checkpoint has been answered and Ray has it. Exiting sooner races that answer.
    """
    import ray.train

    if not fault or metrics.get("step") != fault["after_step"] or metrics.get("kind") == "final":
        return
    marker = Path(fault["marker_dir"]) / FAULT_MARKER
    if marker.exists():
        return
    for _ in range(2):
        ray.train.report({"kind": "fault_drill", "step": metrics["step"]})
    if rank == 0:
        marker.write_text("worker killed once by the fault drill\n")
        os._exit(1)


def ray_train_loop(loop_config: dict[str, Any]) -> dict[str, Any]:
    """The Ray Train worker entry point: resolve data, find a checkpoint to resume from, train.

    Returns the TrainResult as a dict (Ray hands rank 0's return value back to the driver).
    """
    import ray.train

    config = BTTrainConfig.model_validate(loop_config["config"])
    train_pairs, eval_pairs = resolve_pairs(config, loop_config["data"])
    worker = _ray_worker_context(config, loop_config.get("fault"))
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return run_bt_training(config, train_pairs, eval_pairs, worker).model_dump(mode="json")
    with tempfile.TemporaryDirectory(prefix="bt-resume-") as resume_dir:
        checkpoint.to_directory(resume_dir)
        # A restarted worker group is a recovered failure: say so in the metrics (and the console).
        record = json.loads((Path(resume_dir) / RUN_INFO_FILE).read_text())
        worker.report({"kind": "resume", "step": record["state"]["global_step"]})
        if not (Path(resume_dir) / TRAINER_STATE_FILE).exists():  # the final model: nothing left to do
            return _finished_run_summary(Path(resume_dir), len(train_pairs), len(eval_pairs))
        result = run_bt_training(config, train_pairs, eval_pairs, worker, resume_dir=Path(resume_dir))
    return result.model_dump(mode="json")


def _finished_run_summary(final_dir: Path, n_train: int, n_eval: int) -> dict[str, Any]:
    record = json.loads((final_dir / RUN_INFO_FILE).read_text())
    return TrainResult(
        final_checkpoint="",
        steps=record["state"]["global_step"],
        train_pairs=n_train,
        eval_pairs=n_eval,
        final_eval_accuracy=record["metrics"].get("eval_accuracy"),
        wall_s=0.0,
        history=[],
    ).model_dump(mode="json")


def _ray_logs_dir() -> str:
    """Where this Ray session keeps the workers' output (they do not print here)."""
    try:
        from ray._private import worker

        return worker._global_node.get_logs_dir_path()
    except Exception:  # a remote cluster (no local node) or a changed private API
        return "the Ray head node's session logs (/tmp/ray/session_latest/logs by default)"


class _MetricsTail:
    """Follows rank 0's metrics.jsonl from the driver while Ray trains and hands each new row to
    `on_row`: the progress lines come from the driver, through Python logging. A remote cluster
    whose output_dir is not on this machine's disk shows only the start and finish lines."""

    def __init__(self, path: Path, on_row: Callable[[dict[str, Any]], None], interval_s: float = 0.5):
        self.path, self.on_row, self.interval_s = path, on_row, interval_s
        self.offset = path.stat().st_size if path.exists() else 0  # a resumed run's old rows were shown
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="bt-metrics-tail", daemon=True)

    def __enter__(self) -> _MetricsTail:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.poll()  # the rows written since the last poll

    def _follow(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.poll()

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            return
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits for the next poll
        self.offset += len(complete)
        for line in complete.decode("utf-8").splitlines():
            if line.strip():
                try:
                    self.on_row(json.loads(line))
                except Exception:  # a console line is not worth failing a training run over
                    log.warning("could not show metrics row %r", line[:200], exc_info=True)


def train_with_ray(
    config: BTTrainConfig,
    samples_or_paths: Sequence[Sample] | Sequence[str | os.PathLike],
    num_workers: int = 1,
    use_gpu: bool = False,
    address: str | None = None,
    max_failures: int = 1,
    run_name: str = "bt_rm",
    resume: bool = False,
    fail_once_after_step: int | None = None,
) -> TrainResult:
    """Train under Ray Train; the final model is copied to `<output_dir>/final` like the plain path.

    Ray's own run folder (every reported checkpoint, with resumable state) is
    `<output_dir>/ray/<run_name>`. A killed worker is replaced up to `max_failures` times and
    continues from the newest checkpoint. Ray also resumes a run whose folder exists: with
    `resume=False` (a fresh run) that folder is cleared first; `resume=True` continues a run
    whose driver died. `fail_once_after_step` is a fault drill: rank 0 exits once, right after
    that step's checkpoint.
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    if num_workers < 1:
        raise ValueError(f"num_workers must be at least 1, got {num_workers}")
    began = time.perf_counter()
    train_pairs, eval_pairs = resolve_pairs(config, samples_or_paths)  # fail here, not in every worker
    if not train_pairs:
        raise ValueError("no training pairs: need pairwise samples with a preference in the train split")
    output = config.output_path.resolve()
    output.mkdir(parents=True, exist_ok=True)
    if not resume:
        shutil.rmtree(output / "ray" / run_name, ignore_errors=True)
        (output / METRICS_FILE).unlink(missing_ok=True)
    worker_config = config.model_copy(
        update={"output_dir": str(output), "num_threads": 1 if num_workers > 1 else config.num_threads}
    )
    loop_config = {
        "config": worker_config.model_dump(mode="json"),
        "data": _serialisable_data(samples_or_paths),
    }
    if fail_once_after_step is not None:
        loop_config["fault"] = {"after_step": fail_once_after_step, "marker_dir": str(output)}
    progress = TrainingProgress(worker_config, len(train_pairs), len(eval_pairs), world_size=num_workers)
    progress.start(f"under Ray ({'GPU' if use_gpu else 'CPU'}, {address or 'local Ray'})")
    started_ray = init_ray(address, num_cpus=max(2, num_workers))
    try:
        trainer = TorchTrainer(
            ray_train_loop,
            train_loop_config=loop_config,
            scaling_config=ScalingConfig(
                num_workers=num_workers, use_gpu=use_gpu, resources_per_worker=None if use_gpu else {"CPU": 1}
            ),
            run_config=RunConfig(
                name=run_name,
                storage_path=str(output / "ray"),
                failure_config=FailureConfig(max_failures=max_failures),
                checkpoint_config=CheckpointConfig(num_to_keep=config.save_total_limit + 1),
            ),
        )
        with _MetricsTail(output / METRICS_FILE, progress.row):
            try:
                result = trainer.fit()
            except Exception:
                log.error("Ray training failed; the workers' own output is in %s", _ray_logs_dir())
                raise
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    collected = _collect_result(result, output, time.perf_counter() - began)
    progress.finish(collected)
    return collected


def _collect_result(result: Any, output: Path, wall_s: float) -> TrainResult:
    """Rank 0's TrainResult, with the final model copied out of Ray's storage and the whole history
    (rows from before a worker restart included) read back from metrics.jsonl."""
    if result.error is not None:
        raise RuntimeError(f"Ray training failed: {result.error}") from result.error
    if result.checkpoint is None or result.return_value is None:
        raise RuntimeError("Ray training finished without a final checkpoint")
    final = output / "final"
    shutil.rmtree(final, ignore_errors=True)
    result.checkpoint.to_directory(str(final))
    summary = TrainResult.model_validate(result.return_value)
    history = read_metrics(output)
    baseline = next(
        (row.get("eval_accuracy") for row in history if row["kind"] == "eval" and row["step"] == 0), None
    )
    return summary.model_copy(
        update={
            "final_checkpoint": str(final),
            "history": history,
            "wall_s": wall_s,
            "baseline_eval_accuracy": baseline,
        }
    )
