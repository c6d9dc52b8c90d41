"""Each knob is defined once. The trainers' knobs live in the trainers' pydantic configs, and the Dagster
run configs and the verl resource take those fields (type, default, constraints, description) instead
of copying them; how far a benchmark metric may fall is one field for the report and its check."""

from __future__ import annotations

import inspect
import typing

import dagster as dg
import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from rm_assets.benchmarks.assets import BenchmarkConfig, DropConfig, baseline_benchmark_reports
from rm_assets.benchmarks.checks import regression_checks
from rm_assets.checkpoints.assets import (
    ASSET_OWNED_GRPO_FIELDS,
    ASSET_OWNED_TRAINER_FIELDS,
    RUN_DEFAULTS,
    GRMTrainingConfig,
    TrainingRunConfig,
    grm_checkpoints,
    rm_checkpoints,
)
from rm_resources.config_fields import model_fields_base
from rm_resources.datasets import DatasetSourceResource
from rm_resources.llm import LLMClientResource
from rm_resources.verl import DEPLOYMENT_FIELDS, VerlTrainerResource
from rm_resources.warehouse import WarehouseResource
from rm_rewards.benchmarks.report_render import DEFAULT_MAX_DROP, render_report
from training.config import BTTrainConfig
from training.verl_config import VerlGRPOConfig


def _own_fields(cls: type) -> set[str]:
    """The fields a class body declares itself (not those it inherits)."""
    return set(cls.__dict__.get("__annotations__", {}))


def _same_field(taken: FieldInfo, owner: FieldInfo) -> bool:
    return (taken.annotation, taken.description, taken.metadata) == (owner.annotation, owner.description,
                                                                     owner.metadata)


def _other_value(field: FieldInfo):
    """A valid value of `field` that is not its default (enough for the trainers' knob types)."""
    default = field.get_default(call_default_factory=True)
    args = typing.get_args(field.annotation)
    if typing.get_origin(field.annotation) is typing.Literal:
        return next(option for option in args if option != default)
    if typing.get_origin(field.annotation) is list:
        return ["trainer.val_before_train=true"]
    kind = next((a for a in args if a is not type(None)), field.annotation)  # X | None -> X
    if kind is bool:
        return not default
    if kind is int:
        return 3 if default is None else default + 3
    if kind is float:
        return 0.5 if default in (None, 0.0) else default / 2
    if kind is str:
        return "/elsewhere/x"
    raise AssertionError(f"no test value for {field.annotation}")


def _dagster_defaults(asset: dg.AssetsDefinition) -> dict:
    fields = asset.op.config_schema.as_field().config_type.fields
    return {name: field.default_value if field.default_provided else "<required>" for name, field in fields.items()}


def test_the_training_run_config_takes_every_trainer_knob_from_the_trainer():
    trainer = BTTrainConfig.model_fields
    run = TrainingRunConfig.model_fields
    assert _own_fields(TrainingRunConfig) == {"datasets", "pairs"}, "a trainer knob is written a second time"
    assert set(run) == (set(trainer) - ASSET_OWNED_TRAINER_FIELDS) | {"datasets", "pairs"}
    for name in set(trainer) - ASSET_OWNED_TRAINER_FIELDS:
        assert _same_field(run[name], trainer[name]), name
        expected = RUN_DEFAULTS.get(name, trainer[name].default)
        assert run[name].default == expected, name
    # A run default that equals the trainer's would be the same default written twice.
    assert all(RUN_DEFAULTS[name] != trainer[name].default for name in RUN_DEFAULTS)
    # What the launchpad shows and fills in is the same.
    dagster = _dagster_defaults(rm_checkpoints)
    assert set(dagster) == set(run)
    for name in set(trainer) - ASSET_OWNED_TRAINER_FIELDS:
        assert dagster[name] == run[name].default, name


def test_every_trainer_knob_is_settable_from_the_run_config_and_reaches_the_trainer():
    names = set(BTTrainConfig.model_fields) - ASSET_OWNED_TRAINER_FIELDS
    values = {name: _other_value(BTTrainConfig.model_fields[name]) for name in names}
    config = TrainingRunConfig(**values, datasets=["hh_rlhf_helpful"])
    trainer = config.trainer_config("/tmp/run-x")
    assert isinstance(trainer, BTTrainConfig)
    assert {name: getattr(trainer, name) for name in names} == values
    assert trainer.output_dir == "/tmp/run-x"
    # The trainer's constraints hold in the run config too (here: max_length >= 8).
    with pytest.raises(ValueError, match="max_length"):
        TrainingRunConfig(max_length=4)


def test_the_grm_run_config_and_the_verl_resource_take_their_knobs_from_the_grpo_config():
    grpo = VerlGRPOConfig.model_fields
    run = GRMTrainingConfig.model_fields
    resource = VerlTrainerResource.model_fields
    assert _own_fields(GRMTrainingConfig) == {"datasets"}
    assert not _own_fields(VerlTrainerResource) & set(grpo), "a GRPO knob is written a second time"
    assert set(run) == (set(grpo) - ASSET_OWNED_GRPO_FIELDS - DEPLOYMENT_FIELDS) | {"datasets"}
    assert DEPLOYMENT_FIELDS <= set(resource)
    for name in set(run) - {"datasets"}:
        assert _same_field(run[name], grpo[name]) and run[name].default == grpo[name].default, name
    for name in DEPLOYMENT_FIELDS:
        assert _same_field(resource[name], grpo[name]) and resource[name].default == grpo[name].default, name
    dagster = _dagster_defaults(grm_checkpoints)
    assert dagster["model_path"] == "<required>"
    assert {name: dagster[name] for name in set(run) - {"datasets", "model_path", "extra_overrides"}} == {
        name: grpo[name].default for name in set(run) - {"datasets", "model_path", "extra_overrides"}
    }


def test_grm_knobs_and_the_deployment_reach_the_grpo_config():
    names = set(GRMTrainingConfig.model_fields) - {"datasets", "model_path"}
    values = {name: _other_value(VerlGRPOConfig.model_fields[name]) for name in names}
    config = GRMTrainingConfig(model_path="/models/x", **values)
    grpo = config.grpo_config(train_files=["t.parquet"], val_files=["v.parquet"], output_dir="o",
                              experiment_name="grm-1")
    assert {name: getattr(grpo, name) for name in names} == values
    assert (grpo.model_path, grpo.experiment_name) == ("/models/x", "grm-1")

    deployed = VerlTrainerResource(n_gpus_per_node=8, nnodes=2, rollout_name="sglang").deployed(grpo)
    assert (deployed.n_gpus_per_node, deployed.nnodes, deployed.rollout_name) == (8, 2, "sglang")
    assert deployed.rollout_n == grpo.rollout_n
    with pytest.raises(ValueError, match="rollout_name"):
        VerlTrainerResource(rollout_name="tgi")  # the GRPO config's choices hold for the resource too


def test_taking_a_field_the_model_does_not_have_is_an_error():
    class Model(BaseModel):
        a: int = 1
        b: int = 2

    assert set(model_fields_base(Model, BaseModel, only={"a"}).model_fields) == {"a"}
    assert model_fields_base(Model, BaseModel, defaults={"b": 5})().b == 5
    assert Model().b == 2  # the model's own default is untouched
    with pytest.raises(ValueError, match=r"no fields \['c'\]"):
        model_fields_base(Model, BaseModel, exclude={"c"})
    with pytest.raises(ValueError, match=r"not taken: \['a'\]"):
        model_fields_base(Model, BaseModel, exclude={"a"}, defaults={"a": 3})


def test_how_far_a_metric_may_fall_is_one_knob_for_the_report_and_the_check(tmp_path):
    assert issubclass(BenchmarkConfig, DropConfig) and set(DropConfig.model_fields) == {"max_drop"}
    assert _own_fields(BenchmarkConfig) == {"max_judge_items"}
    assert inspect.signature(render_report).parameters["max_drop"].default == DEFAULT_MAX_DROP
    for node in (baseline_benchmark_reports.op, *(check.node_def for check in regression_checks)):
        field = node.config_schema.as_field().config_type.fields["max_drop"]
        assert (field.default_value, field.description) == (DEFAULT_MAX_DROP,
                                                            DropConfig.model_fields["max_drop"].description)
    # The report's old name for it is refused, not ignored.
    with dg.instance_for_test() as instance, pytest.raises(
        dg.DagsterInvalidConfigError, match='unexpected config entry "drop_threshold"'
    ):
        instance.add_dynamic_partitions("evaluated_models", ["reward:length_penalty"])
        dg.materialize(
            [baseline_benchmark_reports],
            resources={"datasets": DatasetSourceResource(mode="bundled"),
                       "warehouse": WarehouseResource(database=str(tmp_path / "w.duckdb")),
                       "llm": LLMClientResource(base_url="http://127.0.0.1:9/v1", model="m")},
            partition_key=dg.MultiPartitionKey({"benchmark": "rmb_pairwise", "model": "reward:length_penalty"}),
            instance=instance,
            run_config={"ops": {"baseline_benchmark_reports": {"config": {"drop_threshold": 0.05}}}},
        )
    with pytest.raises(ValueError, match="max_drop"):
        DropConfig(max_drop=-0.01)
