"""Bradley-Terry reward-model training with torch + transformers: one training function, two launchers.

`run_bt_training(config, train_pairs, eval_pairs, worker)` is the whole loop. `train(config, data)`
runs it in this process (debugging, one GPU); `training.ray_launch.train_with_ray` runs the same
function in Ray Train workers. What differs between the two is a `WorkerContext`: rank, world
size, device, how to wrap the model (DDP under Ray) and where metrics and checkpoints go.

Loss: -log sigmoid(r_chosen - r_rejected - margin) [+ c * mean((r_chosen + r_rejected)^2)].
Checkpoints are plain `save_pretrained` folders (model + tokenizer, num_labels=1), so
`AutoModelForSequenceClassification.from_pretrained(path)` scores text without this package.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import BaseModel

from rm_rewards.core.schema import Sample
from training.bt_scoring import encode_texts, quiet_transformers
from training.config import BTTrainConfig
from training.data import TrainingPair, load_samples, pairs_from_samples, render_text, split_pairs

log = logging.getLogger(__name__)

TRAINER_STATE_FILE = "trainer_state.pt"
RUN_INFO_FILE = "rmforge_bt.json"
METRICS_FILE = "metrics.jsonl"
TEXT_TEMPLATE = (
    "one line per context turn as '<Role>: <content>', then 'Assistant: <response>'; left-truncated"
)


# --- loss and metrics --------------------------------------------------------------------------


def bt_loss(
    r_chosen: torch.Tensor,
    r_rejected: torch.Tensor,
    margin: float = 0.0,
    center_coefficient: float | None = None,
) -> torch.Tensor:
    """Bradley-Terry loss, mean over pairs, with TRL's optional reward-centring term."""
    loss = -F.logsigmoid(r_chosen - r_rejected - margin).mean()
    if center_coefficient:
        loss = loss + center_coefficient * torch.mean((r_chosen + r_rejected) ** 2)
    return loss


@dataclass
class PairStats:
    """Running sums for loss / accuracy / margin / reward range over any number of batches."""

    pairs: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    margin_sum: float = 0.0
    reward_sum: float = 0.0
    reward_min: float = math.inf
    reward_max: float = -math.inf
    tokens: int = 0
    seconds: float = 0.0

    def add(
        self, r_chosen: torch.Tensor, r_rejected: torch.Tensor, loss: float, tokens: int, seconds: float
    ) -> None:
        n = r_chosen.numel()
        rewards = torch.cat([r_chosen, r_rejected])
        self.pairs += n
        self.loss_sum += loss * n
        self.correct += int((r_chosen > r_rejected).sum())
        self.margin_sum += float((r_chosen - r_rejected).sum())
        self.reward_sum += float(rewards.sum())
        self.reward_min = min(self.reward_min, float(rewards.min()))
        self.reward_max = max(self.reward_max, float(rewards.max()))
        self.tokens += tokens
        self.seconds += seconds

    def all_reduce(self) -> PairStats:
        """Sums over all workers (a no-op without torch.distributed); min/max and time take the extremes."""
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return self
        sums = torch.tensor(
            [self.pairs, self.loss_sum, self.correct, self.margin_sum, self.reward_sum, self.tokens],
            dtype=torch.float64,
        )
        extremes = torch.tensor([-self.reward_min, self.reward_max, self.seconds], dtype=torch.float64)
        torch.distributed.all_reduce(sums)
        torch.distributed.all_reduce(extremes, op=torch.distributed.ReduceOp.MAX)
        pairs, loss_sum, correct, margin_sum, reward_sum, tokens = sums.tolist()
        return PairStats(
            int(pairs),
            loss_sum,
            int(correct),
            margin_sum,
            reward_sum,
            -extremes[0].item(),
            extremes[1].item(),
            int(tokens),
            extremes[2].item(),
        )

    def as_metrics(self, prefix: str) -> dict[str, float]:
        if not self.pairs:
            return {f"{prefix}_pairs": 0}
        metrics = {
            f"{prefix}_pairs": self.pairs,
            f"{prefix}_loss": self.loss_sum / self.pairs,
            f"{prefix}_accuracy": self.correct / self.pairs,
            f"{prefix}_margin": self.margin_sum / self.pairs,
            f"{prefix}_reward_min": self.reward_min,
            f"{prefix}_reward_mean": self.reward_sum / (2 * self.pairs),
            f"{prefix}_reward_max": self.reward_max,
        }
        if self.seconds > 0:
            metrics[f"{prefix}_tokens_per_s"] = self.tokens / self.seconds
        return metrics


# --- model, tokenizer, batches -----------------------------------------------------------------


def load_model_and_tokenizer(path: str | os.PathLike, max_length: int) -> tuple[Any, Any]:
    """A one-output sequence classifier and its tokenizer, set up to truncate from the left.

    The tokenizer's `truncation_side` and `model_max_length` are saved with every checkpoint, so a
    plain `tokenizer(text, truncation=True)` later truncates exactly as training did.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    with quiet_transformers():
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    if tokenizer.pad_token is None:  # decoder tokenizers often have none; the score head needs one
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    tokenizer.truncation_side = "left"
    tokenizer.model_max_length = max_length
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _pair_rewards(
    model: Any, tokenizer: Any, pairs: Sequence[TrainingPair], max_length: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Rewards of chosen and rejected texts in one forward pass; also the number of real tokens."""
    texts = [render_text(p.context, p.chosen) for p in pairs] + [
        render_text(p.context, p.rejected) for p in pairs
    ]
    batch = encode_texts(tokenizer, texts, max_length, device)
    rewards = model(**batch).logits.squeeze(-1).float()
    return rewards[: len(pairs)], rewards[len(pairs) :], int(batch["attention_mask"].sum())


def _unwrap(model: Any) -> Any:
    return model.module if hasattr(model, "module") else model


def evaluate_pairs(
    model: Any, tokenizer: Any, pairs: Sequence[TrainingPair], config: BTTrainConfig, worker: WorkerContext
) -> dict[str, float]:
    """Held-out loss / accuracy / margin; each worker scores its shard and the sums are combined."""
    module = _unwrap(model)
    was_training = module.training
    module.eval()
    stats = PairStats()
    shard = list(pairs[worker.rank :: worker.world_size])
    with torch.no_grad():
        for start in range(0, len(shard), config.eval_batch_size):
            chunk = shard[start : start + config.eval_batch_size]
            began = time.perf_counter()
            r_c, r_r, tokens = _pair_rewards(module, tokenizer, chunk, config.max_length, worker.device)
            loss = float(bt_loss(r_c, r_r, config.margin))
            stats.add(r_c.cpu(), r_r.cpu(), loss, tokens, time.perf_counter() - began)
    module.train(was_training)
    return stats.all_reduce().as_metrics("eval")


# --- schedule and state ------------------------------------------------------------------------


@dataclass
class StepPlan:
    """Which pairs each worker sees at each step: a seeded permutation per epoch, padded like
    DistributedSampler so every worker runs the same number of steps."""

    n_pairs: int
    batch_size: int
    world_size: int
    epochs: int
    max_steps: int | None

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(math.ceil(self.n_pairs / self.world_size) / self.batch_size)

    @property
    def total_steps(self) -> int:
        planned = self.steps_per_epoch * self.epochs
        return min(planned, self.max_steps) if self.max_steps else planned

    def worker_batches(self, epoch: int, rank: int, seed: int) -> list[list[int]]:
        generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(self.n_pairs, generator=generator).tolist()
        padded_length = math.ceil(self.n_pairs / self.world_size) * self.world_size
        order = (order * math.ceil(padded_length / self.n_pairs))[:padded_length]
        mine = order[rank :: self.world_size]
        return [mine[i : i + self.batch_size] for i in range(0, len(mine), self.batch_size)]


@dataclass
class TrainState:
    global_step: int = 0
    epoch: int = 0  # the epoch in progress (== epochs when done)
    batches_done_in_epoch: int = 0


# torch has a fused AdamW kernel for these devices (and others we do not run on).
FUSED_ADAMW_DEVICES = ("cpu", "cuda")


def make_optimizer(model: Any, config: BTTrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW, fused where torch has the kernel: one pass over each parameter instead of a dozen
    element-wise ones. On all-MiniLM-L6-v2 (22.7M parameters, 2 CPU threads) a step costs 0.03
    CPU-s instead of 0.16 on idle cores, 0.3 instead of 1.0 on busy ones (memory-bound); TRL's
    default optimizer is the same (bench/RESULTS.md, training throughput)."""
    return torch.optim.AdamW(
        model.parameters(),
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
        fused=device.type in FUSED_ADAMW_DEVICES,
    )


def _lr_lambda(config: BTTrainConfig, total_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if config.warmup_steps and step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        if config.lr_scheduler == "linear":
            remaining = total_steps - step
            return max(0.0, remaining / max(1, total_steps - config.warmup_steps))
        return 1.0

    return factor


def write_checkpoint(
    directory: Path,
    model: Any,
    tokenizer: Any,
    config: BTTrainConfig,
    state: TrainState,
    metrics: dict[str, Any],
    optimizer: Any = None,
    scheduler: Any = None,
) -> Path:
    """A `save_pretrained` folder (+ optimizer state when given, for resuming) and a JSON run record."""
    directory.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        _unwrap(model).save_pretrained(directory)
        tokenizer.save_pretrained(directory)
    if optimizer is not None:
        # Written last and renamed into place: `latest_checkpoint` takes a folder with this file as
        # resumable, so a kill mid-save must leave no half-written one (the weights are saved above).
        partial = directory / (TRAINER_STATE_FILE + ".partial")
        torch.save(
            {
                "state": state.__dict__,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
            },
            partial,
        )
        os.replace(partial, directory / TRAINER_STATE_FILE)
    record = {
        "config": config.model_dump(mode="json"),
        "text_template": TEXT_TEMPLATE,
        "state": state.__dict__,
        "metrics": metrics,
    }
    (directory / RUN_INFO_FILE).write_text(json.dumps(record, indent=2, default=float))
    return directory


def read_trainer_state(directory: Path, optimizer: Any, scheduler: Any) -> TrainState:
    """Restore optimizer and scheduler from a checkpoint written by `write_checkpoint`."""
    path = directory / TRAINER_STATE_FILE
    if not path.exists():
        raise FileNotFoundError(f"{directory} has no {TRAINER_STATE_FILE}: not a resumable checkpoint")
    saved = torch.load(path, map_location="cpu", weights_only=False)
    optimizer.load_state_dict(saved["optimizer"])
    if scheduler is not None and saved["scheduler"] is not None:
        scheduler.load_state_dict(saved["scheduler"])
    return TrainState(**saved["state"])


# --- the training function ---------------------------------------------------------------------


@dataclass
class WorkerContext:
    """What the training function needs to know about where it runs.

    `report(metrics)` records a metrics row; `checkpoint(metrics, write)` asks the launcher for a
    folder, lets `write(folder)` fill it (rank 0 only), and registers it. Both are called by every
    worker at the same points, so a launcher may use them as synchronisation points (Ray does).
    """

    report: Callable[[dict[str, Any]], None]
    checkpoint: Callable[[dict[str, Any], Callable[[Path], None]], None]
    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    prepare_model: Callable[[Any], Any] = lambda model: model


class TrainResult(BaseModel):
    final_checkpoint: str
    steps: int
    train_pairs: int
    eval_pairs: int
    baseline_eval_accuracy: float | None = None
    final_eval_accuracy: float | None = None
    wall_s: float
    history: list[dict[str, Any]]


@dataclass
class _Run:
    """Everything one training run mutates, kept together so the loop's helpers stay small."""

    config: BTTrainConfig
    worker: WorkerContext
    model: Any
    tokenizer: Any
    optimizer: Any
    scheduler: Any
    plan: StepPlan
    state: TrainState
    eval_pairs: Sequence[TrainingPair]
    history: list[dict[str, Any]] = field(default_factory=list)
    # Where this process's training loop began (a resumed run starts past step 0): steps_per_s.
    loop_began: float = field(default_factory=time.perf_counter)
    first_step: int = 0

    def steps_per_s(self) -> float:
        """Wall-clock steps per second of this process's loop so far, evaluations and checkpoints
        included: what the ETA on the console is computed from."""
        elapsed = time.perf_counter() - self.loop_began
        return (self.state.global_step - self.first_step) / elapsed if elapsed > 0 else 0.0

    def emit(self, kind: str, metrics: dict[str, Any]) -> dict[str, Any]:
        row = {
            "kind": kind,
            "step": self.state.global_step,
            "epoch": self.state.epoch + self.state.batches_done_in_epoch / max(1, self.plan.steps_per_epoch),
            **metrics,
        }
        self.history.append(row)
        self.worker.report(row)
        return row

    def evaluate(self) -> dict[str, Any] | None:
        if not self.eval_pairs:
            return None
        return self.emit(
            "eval", evaluate_pairs(self.model, self.tokenizer, self.eval_pairs, self.config, self.worker)
        )

    def save(self, metrics: dict[str, Any]) -> None:
        def write(directory: Path) -> None:
            write_checkpoint(
                directory,
                self.model,
                self.tokenizer,
                self.config,
                self.state,
                metrics,
                self.optimizer,
                self.scheduler,
            )

        self.worker.checkpoint({**metrics, "kind": "checkpoint", "step": self.state.global_step}, write)


def _train_step(
    run: _Run, batch: list[TrainingPair]
) -> tuple[torch.Tensor, torch.Tensor, float, int, float]:
    config = run.config
    # Seeding per step makes dropout identical whether or not the run was resumed in between.
    torch.manual_seed(config.seed * 1_000_003 + run.state.global_step)
    began = time.perf_counter()
    r_c, r_r, tokens = _pair_rewards(run.model, run.tokenizer, batch, config.max_length, run.worker.device)
    loss = bt_loss(r_c, r_r, config.margin, config.center_rewards_coefficient)
    loss.backward()
    if config.max_grad_norm:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), config.max_grad_norm)
    run.optimizer.step()
    run.scheduler.step()
    # Free the gradients now rather than before the next backward: they would otherwise sit in
    # memory (one float per parameter) through the next forward pass, where activations peak.
    run.optimizer.zero_grad(set_to_none=True)
    return r_c.detach().cpu(), r_r.detach().cpu(), float(loss.detach()), tokens, time.perf_counter() - began


def _run_epoch(run: _Run, train_pairs: Sequence[TrainingPair]) -> PairStats:
    """Train the rest of the current epoch (or up to max_steps); returns the epoch's combined stats."""
    config, state = run.config, run.state
    batches = run.plan.worker_batches(state.epoch, run.worker.rank, config.seed)
    epoch_stats, window = PairStats(), PairStats()
    for indices in batches[state.batches_done_in_epoch :]:
        if state.global_step >= run.plan.total_steps:
            break
        r_c, r_r, loss, tokens, seconds = _train_step(run, [train_pairs[i] for i in indices])
        state.global_step += 1
        state.batches_done_in_epoch += 1
        epoch_stats.add(r_c, r_r, loss, tokens, seconds)
        window.add(r_c, r_r, loss, tokens, seconds)
        step = state.global_step
        if step % config.log_every_steps == 0 or step == run.plan.total_steps:
            run.emit(
                "step",
                {
                    **window.all_reduce().as_metrics("train"),
                    "lr": run.scheduler.get_last_lr()[0],
                    "steps_per_s": run.steps_per_s(),
                },
            )
            window = PairStats()
        if config.eval_every_steps and step % config.eval_every_steps == 0:
            run.evaluate()
        if config.save_every_steps and step % config.save_every_steps == 0:
            run.save({})
    return epoch_stats.all_reduce()


def run_bt_training(
    config: BTTrainConfig,
    train_pairs: Sequence[TrainingPair],
    eval_pairs: Sequence[TrainingPair],
    worker: WorkerContext,
    resume_dir: Path | None = None,
) -> TrainResult:
    """Train a Bradley-Terry RM; the same function runs in-process and inside Ray Train workers."""
    if not train_pairs:
        raise ValueError("no training pairs: need pairwise samples with a preference in the train split")
    began = time.perf_counter()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    model, tokenizer = load_model_and_tokenizer(resume_dir or config.resolved_model_path(), config.max_length)
    model.to(worker.device)
    model.train()
    plan = StepPlan(len(train_pairs), config.batch_size, worker.world_size, config.epochs, config.max_steps)
    optimizer = make_optimizer(model, config, worker.device)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(config, plan.total_steps))
    state = read_trainer_state(resume_dir, optimizer, scheduler) if resume_dir else TrainState()
    run = _Run(
        config, worker, worker.prepare_model(model), tokenizer, optimizer, scheduler, plan, state, eval_pairs
    )
    baseline = run.evaluate() if (state.global_step == 0 and config.eval_before_training) else None
    run.loop_began, run.first_step = time.perf_counter(), state.global_step
    last_eval = None
    while state.epoch < config.epochs and state.global_step < plan.total_steps:
        stats = _run_epoch(run, train_pairs)
        if state.batches_done_in_epoch >= plan.steps_per_epoch:
            state.epoch, state.batches_done_in_epoch = state.epoch + 1, 0
        epoch_row = run.emit("epoch", stats.as_metrics("train"))
        last_eval = run.evaluate()
        run.save({**epoch_row, **(last_eval or {})})
    return _finish(run, baseline, last_eval, len(train_pairs), began)


def _finish(
    run: _Run, baseline: dict | None, last_eval: dict | None, n_train: int, began: float
) -> TrainResult:
    final_metrics = {**(last_eval or {}), "kind": "final", "step": run.state.global_step}
    final_dir: list[Path] = []

    def write(directory: Path) -> None:
        write_checkpoint(directory, run.model, run.tokenizer, run.config, run.state, final_metrics)
        final_dir.append(directory)

    run.worker.checkpoint(final_metrics, write)
    return TrainResult(
        final_checkpoint=str(final_dir[0]) if final_dir else "",
        steps=run.state.global_step,
        train_pairs=n_train,
        eval_pairs=len(run.eval_pairs),
        baseline_eval_accuracy=(baseline or {}).get("eval_accuracy"),
        final_eval_accuracy=(last_eval or {}).get("eval_accuracy"),
        wall_s=time.perf_counter() - began,
        history=run.history,
    )


# --- data for either launcher ------------------------------------------------------------------


def resolve_pairs(
    config: BTTrainConfig, data: Sequence[Sample | TrainingPair | dict | str | os.PathLike]
) -> tuple[list[TrainingPair], list[TrainingPair]]:
    """(train pairs, held-out pairs) from Samples, ready TrainingPairs (e.g. curated training pairs),
    their dict forms, or sample files, after the config's caps and holdout. Pairs folded from the
    samples come first, then the given pairs in their order."""
    samples: list[Sample] = []
    given: list[TrainingPair] = []
    for item in data:
        if isinstance(item, Sample):
            samples.append(item)
        elif isinstance(item, TrainingPair):
            given.append(item)
        elif isinstance(item, dict) and "chosen" in item:  # a TrainingPair dump (a Sample's has responses)
            given.append(TrainingPair.model_validate(item))
        elif isinstance(item, dict):
            samples.append(Sample.model_validate(item))
        else:
            samples.extend(load_samples(item))
    folded = pairs_from_samples(samples) if samples else []
    train_pairs, eval_pairs = split_pairs(folded + given)
    if not eval_pairs and config.holdout_fraction > 0 and len(train_pairs) > 1:
        generator = torch.Generator().manual_seed(config.seed)
        order = torch.randperm(len(train_pairs), generator=generator).tolist()
        n_holdout = max(1, round(len(train_pairs) * config.holdout_fraction))
        eval_pairs = [train_pairs[i] for i in order[:n_holdout]]
        train_pairs = [train_pairs[i] for i in sorted(order[n_holdout:])]
    return train_pairs[: config.max_train_pairs], eval_pairs[: config.max_eval_pairs]


# --- the console -------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    minutes, secs = divmod(max(0, round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _number(row: dict[str, Any], key: str, spec: str) -> str:
    value = row.get(key)
    return "n/a" if value is None else format(value, spec)


class TrainingProgress:
    """What a training run prints, through Python logging (`training.bt_trainer`, which the rmforge
    CLI shows and a Dagster step captures): one start line, a line per step row (every
    `log_every_steps` steps: loss, accuracy, ETA), a line per evaluation, a warning when Ray
    restarted the workers, and a finish line; epoch rows go to DEBUG. Both launchers feed it the
    rows they write to metrics.jsonl (the Ray driver tails that file), so both print the same lines."""

    def __init__(self, config: BTTrainConfig, n_train: int, n_eval: int, world_size: int = 1) -> None:
        plan = StepPlan(n_train, config.batch_size, world_size, config.epochs, config.max_steps)
        self.config, self.n_train, self.n_eval, self.world_size = config, n_train, n_eval, world_size
        self.total_steps = plan.total_steps
        self.began = time.perf_counter()

    def start(self, launcher: str) -> None:
        config = self.config
        backbone = Path(config.model_path).name if config.model_path else "all-MiniLM-L6-v2"
        shape = f"batch {config.batch_size} x {self.world_size} worker(s), {config.epochs} epoch(s)"
        log.info(
            f"BT training {launcher}: {self.n_train} train / {self.n_eval} held-out pairs, "
            f"{self.total_steps} steps ({shape}), backbone {backbone}, output {config.output_dir}"
        )

    def row(self, row: dict[str, Any]) -> None:
        kind = row.get("kind")
        if kind == "step":
            log.info(self._step_line(row))
        elif kind == "eval":
            log.info(self._eval_line(row))
        elif kind == "resume":
            log.warning(f"resuming from the checkpoint at step {row['step']} (Ray restarted the workers)")
        else:
            log.debug("bt %s", row)

    def _step_line(self, row: dict[str, Any]) -> str:
        step, total = row["step"], self.total_steps
        rate = row.get("steps_per_s") or 0.0
        eta = _duration((total - step) / rate) if rate > 0 else "?"
        tokens = row.get("train_tokens_per_s")
        return (
            f"step {step}/{total} ({100 * step / max(1, total):.0f}%)  loss {_number(row, 'train_loss', '.4f')}  "
            f"acc {_number(row, 'train_accuracy', '.3f')}  lr {_number(row, 'lr', '.1e')}  "
            f"{'' if tokens is None else f'{tokens:,.0f} tok/s  '}ETA {eta}"
        )

    def _eval_line(self, row: dict[str, Any]) -> str:
        when = "before training" if row["step"] == 0 else f"at step {row['step']}/{self.total_steps}"
        return (
            f"eval {when}: loss {_number(row, 'eval_loss', '.4f')}  acc {_number(row, 'eval_accuracy', '.3f')}  "
            f"margin {_number(row, 'eval_margin', '+.4f')}  ({row.get('eval_pairs', 0)} held-out pairs)"
        )

    def finish(self, result: TrainResult) -> None:
        before, after = result.baseline_eval_accuracy, result.final_eval_accuracy
        accuracy = "no held-out pairs" if after is None else f"held-out accuracy {after:.3f}"
        if after is not None and before is not None:
            accuracy = f"held-out accuracy {before:.3f} -> {after:.3f}"
        took, model = _duration(time.perf_counter() - self.began), result.final_checkpoint
        log.info(f"BT training finished: {result.steps} steps in {took}, {accuracy}; model {model}")


# --- the in-process launcher -------------------------------------------------------------------


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The newest resumable `checkpoint-<step>` folder under output_dir, or None."""
    candidates = [p for p in Path(output_dir).glob("checkpoint-*") if (p / TRAINER_STATE_FILE).exists()]
    return max(candidates, key=lambda p: int(p.name.split("-")[-1]), default=None)


def _resume_dir(config: BTTrainConfig) -> Path | None:
    if config.resume_from_checkpoint is None:
        return None
    if config.resume_from_checkpoint == "latest":
        return latest_checkpoint(config.output_dir)  # nothing saved yet: start fresh
    return Path(config.resume_from_checkpoint)


def append_metrics_row(path: Path, row: dict[str, Any]) -> None:
    """One JSON line per metrics row: `<output_dir>/metrics.jsonl`, written by rank 0 of either launcher."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, default=float) + "\n")


def read_metrics(output_dir: str | os.PathLike) -> list[dict[str, Any]]:
    path = Path(output_dir) / METRICS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def local_worker_context(
    config: BTTrainConfig,
    device: str | torch.device = "cpu",
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> WorkerContext:
    """Metrics to `<output_dir>/metrics.jsonl` (and `on_row`, e.g. `TrainingProgress.row`); checkpoints
    to `<output_dir>/checkpoint-<step>`, keeping the newest `save_total_limit`; the final model to
    `<output_dir>/final`."""
    output = config.output_path
    output.mkdir(parents=True, exist_ok=True)

    def report(row: dict[str, Any]) -> None:
        append_metrics_row(output / METRICS_FILE, row)
        if on_row is not None:
            on_row(row)

    def checkpoint(metrics: dict[str, Any], write: Callable[[Path], None]) -> None:
        if metrics.get("kind") == "final":
            target = output / "final"
            shutil.rmtree(target, ignore_errors=True)
            write(target)
            return
        write(output / f"checkpoint-{metrics['step']:06d}")
        kept = sorted(output.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
        for old in kept[: -config.save_total_limit]:
            shutil.rmtree(old, ignore_errors=True)

    return WorkerContext(report=report, checkpoint=checkpoint, device=torch.device(device))


def train(
    config: BTTrainConfig, data: Sequence[Sample] | Sequence[str | os.PathLike], device: str = "cpu"
) -> TrainResult:
    """Train in this process (no Ray): Samples or sample files in, `<output_dir>/final` out.

    A fresh run starts a new `<output_dir>/metrics.jsonl`; a resumed one appends to it.
    """
    train_pairs, eval_pairs = resolve_pairs(config, data)
    resume_dir = _resume_dir(config)
    if resume_dir is None:
        (config.output_path / METRICS_FILE).unlink(missing_ok=True)
    progress = TrainingProgress(config, len(train_pairs), len(eval_pairs))
    progress.start(f"in process on {device}")
    worker = local_worker_context(config, device, on_row=progress.row)
    result = run_bt_training(config, train_pairs, eval_pairs, worker, resume_dir=resume_dir)
    progress.finish(result)
    return result
