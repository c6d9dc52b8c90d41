"""Trained reward-model checkpoints: one dynamic partition per training run, trained on training_pairs."""

import hashlib
import json
from typing import Literal

import dagster as dg

from rm_assets.curation.assets import training_pairs
from rm_assets.partitions import DATASETS, grm_training_runs, training_runs
from rm_assets.versions import code_version
from rm_resources.config_fields import model_fields_base
from rm_resources.ray_cluster import RayClusterResource
from rm_resources.verl import DEPLOYMENT_FIELDS, VerlTrainerResource
from rm_resources.warehouse import WarehouseResource, default_data_dir
from training.config import BTTrainConfig
from training.verl_config import VerlGRPOConfig

# The asset names the trainer's output folder (one per run key); every other trainer knob is a run knob.
ASSET_OWNED_TRAINER_FIELDS = frozenset({"output_dir"})
# A run config trains on ~10 minutes of 2 cores by default: 1,500 pairs × 2 epochs reached 67%
# held-out accuracy (bench/RESULTS.md). The trainer itself defaults to all pairs.
RUN_DEFAULTS = {"max_train_pairs": 1500, "max_eval_pairs": 400}


class TrainingRunConfig(
    model_fields_base(BTTrainConfig, dg.Config, exclude=ASSET_OWNED_TRAINER_FIELDS, defaults=RUN_DEFAULTS)
):
    """A Bradley-Terry training run: every knob of `training.config.BTTrainConfig` (its types,
    defaults and descriptions; RUN_DEFAULTS apart), plus which pairs to train on. Defaults: the short
    CPU schedule on bundled HH-RLHF harmless."""

    datasets: list[str] = ["hh_rlhf_harmless"]
    # "curated": the kept and flagged rows of training_pairs (the default); "raw": every human-labelled
    # pair of the same datasets as converted, before curation (for measuring what curation buys).
    pairs: Literal["curated", "raw"] = "curated"

    def trainer_config(self, output_dir: str) -> BTTrainConfig:
        return BTTrainConfig(**self.model_dump(exclude={"datasets", "pairs"}), output_dir=output_dir)


# The run key of a run trained before every trainer knob was a run knob covered these fields; the
# knobs added since enter the key only when set away from their default, so those runs keep their keys.
_FIRST_KEY_FIELDS = frozenset({
    "datasets", "pairs", "model_path", "epochs", "max_steps", "batch_size", "max_length", "learning_rate",
    "margin", "center_rewards_coefficient", "max_train_pairs", "max_eval_pairs", "seed",
})


def training_run_key(config: TrainingRunConfig, data_versions: dict[str, str]) -> str:
    """Same config and same training data (pairs, splits, curation) → same key; anything else is a new run."""
    fields = type(config).model_fields
    keyed = {
        name: value for name, value in config.model_dump().items()
        if name in _FIRST_KEY_FIELDS or value != fields[name].get_default(call_default_factory=True)
    }
    payload = json.dumps({"config": keyed, "data": data_versions}, sort_keys=True)
    return "bt-" + hashlib.sha256(payload.encode()).hexdigest()[:12]


def _check_datasets(datasets: list[str]) -> None:
    unknown = sorted(set(datasets) - set(DATASETS))
    if unknown:
        raise ValueError(f"unknown datasets {unknown}; known: {', '.join(DATASETS)}")


def training_data_versions(store, datasets: list[str]) -> dict[str, str]:
    """The content version of each dataset's training_pairs (pairs, splits, decisions, policy)."""
    _check_datasets(datasets)
    return {dataset: store.training_pairs_version(dataset) for dataset in datasets}


def training_inputs(store, config: TrainingRunConfig) -> list:
    """The pairs this run trains and evaluates on, as `training.data.TrainingPair`s."""
    from training.data import pairs_from_samples, pairs_from_training_records

    _check_datasets(config.datasets)
    if config.pairs == "curated":
        pairs = pairs_from_training_records(store.read_training_pairs(config.datasets))
    else:
        pairs = pairs_from_samples(
            [s for dataset in config.datasets for s in store.read_samples(dataset, task="pairwise")]
        )
    if not pairs:
        raise ValueError(
            f"no {config.pairs} training pairs in {config.datasets}: materialize training_pairs for them first"
        )
    return pairs


def _curve_markdown(history: list[dict]) -> str:
    from rm_rewards.benchmarks.plots import line_chart_markdown

    steps = [row for row in history if row.get("kind") == "step"]
    evals = [row for row in history if row.get("kind") == "eval" and "eval_accuracy" in row]
    return line_chart_markdown(
        {
            "loss": {
                "train": [(r["step"], r["train_loss"]) for r in steps if "train_loss" in r],
                "held-out": [(r["step"], r["eval_loss"]) for r in evals if "eval_loss" in r],
            },
            "pairwise accuracy": {
                "train": [(r["step"], r["train_accuracy"]) for r in steps if "train_accuracy" in r],
                "held-out": [(r["step"], r["eval_accuracy"]) for r in evals],
            },
        },
        title="Bradley-Terry training",
    )


@dg.asset(
    partitions_def=training_runs,
    deps=[dg.AssetDep(training_pairs, partition_mapping=dg.AllPartitionMapping())],
    group_name="training",
    kinds={"pytorch", "ray"},
    pool="training",
    code_version=code_version("rm_assets.checkpoints.assets", "training.bt_trainer", "training.ray_launch",
                              "training.data", "training.config", "rm_resources.ray_cluster"),
    description="A Bradley-Terry reward model trained on the training_pairs of the datasets its run config "
    "names; the run key comes from the config and those pairs' content.",
)
def rm_checkpoints(
    context: dg.AssetExecutionContext,
    config: TrainingRunConfig,
    warehouse: WarehouseResource,
    ray: RayClusterResource,
) -> dg.MaterializeResult:
    store = warehouse.get_store()
    pairs = training_inputs(store, config)
    data_versions = training_data_versions(store, config.datasets)
    source_runs = {dataset: store.run_ids("training_pairs", dataset) for dataset in config.datasets}

    run_key = context.partition_key
    output_dir = default_data_dir() / "checkpoints" / run_key
    trainer_config = config.trainer_config(str(output_dir))
    result = ray.train_reward_model(trainer_config, pairs, run_name=run_key)

    store.write_checkpoint(
        run_key, result, datasets=config.datasets,
        config={**config.model_dump(), "trainer": trainer_config.model_dump(mode="json")},
        data_versions=data_versions, source_runs=source_runs, run_id=context.run_id,
    )
    accuracies = {
        "untrained_eval_accuracy": result.baseline_eval_accuracy,
        "final_eval_accuracy": result.final_eval_accuracy,
    }
    return dg.MaterializeResult(
        metadata={
            **{name: round(value, 4) for name, value in accuracies.items() if value is not None},
            "path": dg.MetadataValue.path(result.final_checkpoint),
            "config": dg.MetadataValue.json(trainer_config.model_dump(mode="json")),
            "pairs": config.pairs,
            "training_data_versions": dg.MetadataValue.json(data_versions),
            "training_pairs_runs": dg.MetadataValue.json(source_runs),
            "train_pairs": result.train_pairs,
            "eval_pairs": result.eval_pairs,
            "steps": result.steps,
            "wall_s": round(result.wall_s, 1),
            "metrics_curve": dg.MetadataValue.md(_curve_markdown(result.history)),
        },
        data_version=dg.DataVersion(run_key),
    )



# What the asset sets on a run's VerlGRPOConfig: its data, folders and name, and our reward function
# (code of this repository, versioned with the asset). The rest, less the deployment, are run knobs.
ASSET_OWNED_GRPO_FIELDS = frozenset({
    "train_files", "val_files", "output_dir", "experiment_name", "reward_function_path", "reward_function_name",
})


class GRMTrainingConfig(
    model_fields_base(VerlGRPOConfig, dg.Config, exclude=ASSET_OWNED_GRPO_FIELDS | DEPLOYMENT_FIELDS)
):
    """A generative reward model trained with verl GRPO on A/B/tie verdicts and 0-4 grades: the run
    knobs of `training.verl_config.VerlGRPOConfig` (model_path, the policy to train, is required),
    plus the datasets to learn from."""

    datasets: list[str] = ["helpsteer2", "hh_rlhf_helpful"]

    def grpo_config(self, **asset_owned) -> VerlGRPOConfig:
        return VerlGRPOConfig(**self.model_dump(exclude={"datasets"}), **asset_owned)


def grm_training_samples(store, datasets: list[str]) -> list:
    """The samples a generative RM learns from: each curated pair (kept or flagged) as a pairwise
    sample with the chosen response first, plus the datasets' pointwise samples (0-4 grades)."""
    from rm_rewards.core.schema import Sample
    from rm_rewards.curation.curate import TRAINED_DECISIONS

    _check_datasets(datasets)
    samples = [
        Sample(id=pair.pair_id, source=dataset, task="pairwise", split=pair.split, input=pair.context,
               responses=[pair.chosen, pair.rejected], preference=0)
        for dataset in datasets
        for pair in store.read_training_pairs([dataset])
        if pair.decision in TRAINED_DECISIONS
    ]
    samples += [s for dataset in datasets for s in store.read_samples(dataset, task="pointwise")]
    if not samples:
        raise ValueError(f"no training pairs or pointwise samples in {datasets}: materialize training_pairs first")
    return samples


@dg.asset(
    partitions_def=grm_training_runs,
    deps=[dg.AssetDep(training_pairs, partition_mapping=dg.AllPartitionMapping())],
    group_name="training",
    kinds={"verl", "ray"},
    pool="training",
    code_version=code_version("rm_assets.checkpoints.assets", "training.verl_config", "training.verl_export",
                              "training.verl_launch", "training.verl_pipes_entry", "training.verl_reward",
                              "rm_resources.verl"),
    description="A generative reward model trained with verl GRPO (needs GPUs) on the curated training_pairs "
    "and the pointwise grades; progress and metrics via Pipes.",
)
def grm_checkpoints(
    context: dg.AssetExecutionContext,
    config: GRMTrainingConfig,
    warehouse: WarehouseResource,
    verl: VerlTrainerResource,
) -> dg.MaterializeResult:
    from rm_rewards.benchmarks.plots import line_chart_markdown
    from training.verl_export import export_verl_dataset

    run_key = context.partition_key
    store = warehouse.get_store()
    samples = grm_training_samples(store, config.datasets)
    run_dir = default_data_dir() / "grm" / run_key
    exported = export_verl_dataset(samples, run_dir / "data")
    if "train" not in exported["paths"] or "test" not in exported["paths"]:
        raise ValueError(f"need both train and test rows for verl; got {exported['rows']}")
    grpo = config.grpo_config(
        train_files=[exported["paths"]["train"]],
        val_files=[exported["paths"]["test"]],
        output_dir=str(run_dir / "checkpoints"),
        experiment_name=run_key,
    )
    reported = verl.train(context, grpo)
    metadata = dict(reported.metadata or {})
    curve = metadata.get("metrics_curve")
    history = curve.value if curve is not None else []
    numeric = sorted({k for row in history for k, v in row.items() if k != "step" and isinstance(v, (int, float))})
    shown = [k for k in numeric if "reward" in k or "score" in k][:3] or numeric[:3]
    metadata["metrics_plot"] = dg.MetadataValue.md(
        line_chart_markdown({k: {k: [(r["step"], r[k]) for r in history if k in r]} for k in shown},
                            title="verl GRPO")
    )
    metadata["exported_rows"] = dg.MetadataValue.json(exported["rows"])
    metadata["training_data_versions"] = dg.MetadataValue.json(training_data_versions(store, config.datasets))
    return dg.MaterializeResult(metadata=metadata, data_version=reported.data_version)
