"""The models a benchmark evaluates, and their keys: one grammar, one resolver.

A key names one evaluated model and doubles as a Dagster partition key, so it never holds "|",
",", "[", "]" (multi-partition syntax) or ".." (Dagster rejects "..."):

    reward:<rule>[@<8 hex>]        a registered rule reward        RewardModel
    judge:<llm judge>[@<8 hex>]    a registered LLM judge          RewardModel
    checkpoint:<training run>      a trained Bradley-Terry model   CheckpointModel
    principles:<dataset>           the pointwise LLM judge with    PrinciplesModel
                                   the principles learned on <dataset>

`@<8 hex>` hashes non-default parameters (see `RewardModel.key`). Build keys from the specs
(`CheckpointModel(run_id=...).key`, or `checkpoint_key(run)` / `principles_key(dataset)`), route by
`model_kind(key)` and get the spec back with `model_from_key(key)`; nobody formats or splits key
strings by hand.
"""

from __future__ import annotations

import hashlib
import json
import re
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from rm_rewards.benchmarks.pair_judging import PairOrders
from rm_rewards.core import registry
from rm_rewards.core.kinds import DEFAULT_MAX_CONCURRENCY, Reward

if typing.TYPE_CHECKING:
    from rm_rewards.judging.judges import PointwiseJudge
    from rm_rewards.llm.client import LLMClient

ModelKind = Literal["reward", "judge", "checkpoint", "principles"]
MODEL_KINDS: tuple[ModelKind, ...] = typing.get_args(ModelKind)
_VARIANT_KINDS = ("reward", "judge")  # the kinds whose parameters hash into an @variant

_NAME = r"(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]*"
_KEY_PART = re.compile(rf"^{_NAME}$")
_KEY = re.compile(rf"^({'|'.join(MODEL_KINDS)}):({_NAME})(?:@([0-9a-f]{{8}}))?$")
_KEY_GRAMMAR = (
    "expected reward:<name> or judge:<name> (optionally @<8 hex>), checkpoint:<run-id> or "
    "principles:<dataset>, names of letters, digits, '_', '-' and single '.'"
)


def _key_safe(value: str) -> str:
    if not _KEY_PART.match(value):
        raise ValueError(
            f"{value!r} must be letters, digits, '_', '-' and single '.' (it goes into a partition key)"
        )
    return value


KeyPart = Annotated[str, AfterValidator(_key_safe)]  # a name that goes into a model key


# --- the specs -----------------------------------------------------------------------------------


class RewardModel(BaseModel):
    """A registered reward, rule or LLM judge, with its parameters (JSON values only, so they hash
    into the key). `pair_orders` applies to pairwise judges: "both" asks every pair in both orders
    (a pair is won only when both agree) and measures position bias; "one" halves the calls."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["reward"] = "reward"
    reward: str
    params: dict[str, Any] = Field(default_factory=dict)
    pair_orders: PairOrders = "both"
    max_concurrency: int = Field(DEFAULT_MAX_CONCURRENCY, ge=1)

    @field_validator("reward")
    @classmethod
    def _registered(cls, name: str) -> str:
        try:
            registry.spec(name)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from None
        return name

    @field_validator("params")
    @classmethod
    def _json_params(cls, params: dict[str, Any]) -> dict[str, Any]:
        try:
            json.dumps(params, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"params must be plain JSON values (they go into the model key): {exc}"
            ) from None
        return params

    @property
    def is_llm(self) -> bool:
        return registry.spec(self.reward).is_llm

    @property
    def key(self) -> str:
        """`reward:<name>` (rule) or `judge:<name>` (LLM), plus `@<hash>` when params or
        pair_orders differ from the defaults, so two configurations never share a partition."""
        prefix = "judge" if self.is_llm else "reward"
        if not self.params and self.pair_orders == "both":
            return f"{prefix}:{self.reward}"
        variant = json.dumps({"params": self.params, "pair_orders": self.pair_orders}, sort_keys=True)
        return f"{prefix}:{self.reward}@{hashlib.sha256(variant.encode()).hexdigest()[:8]}"

    def build(self, client: LLMClient | None = None) -> Reward:
        """The configured reward; an LLM judge gets `client` in its field typed `LLMClient`.
        A rule ignores `client`, so a caller may pass its client to every model."""
        spec = registry.spec(self.reward)
        if not spec.is_llm:
            return registry.get(self.reward, **self.params)
        field = _client_field(spec.cls)
        if field is None:
            raise TypeError(f"LLM reward {self.reward!r} has no field typed LLMClient to receive the client")
        if client is None:
            raise ValueError(f"LLM reward {self.reward!r} needs an LLMClient: pass client=...")
        if field in self.params:
            raise ValueError(f"model {self.key}: params must not set {field!r}; pass client=... instead")
        return registry.get(self.reward, **self.params, **{field: client})


class CheckpointModel(BaseModel):
    """A trained Bradley-Terry checkpoint; the caller scores it (see `evaluate_model`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["checkpoint"] = "checkpoint"
    run_id: KeyPart
    path: str | None = None

    @property
    def key(self) -> str:
        return f"checkpoint:{self.run_id}"


PrinciplesSource = Literal["learned", "default (no principle survived)"]
PRINCIPLES_LEARNED: PrinciplesSource = "learned"
PRINCIPLES_DEFAULT: PrinciplesSource = "default (no principle survived)"


@dataclass(frozen=True)
class PrinciplesJudge:
    """A built principles judge and where its principles came from. An empty learned set gives the
    judge's defaults (no scenario, no principles: "judge overall quality"), and says so here so the
    report does not pass it off as the learned judge."""

    judge: PointwiseJudge
    principles_source: PrinciplesSource
    principle_set_id: str | None
    n_principles: int

    def metadata(self) -> dict[str, str | int]:
        """For asset metadata and reports."""
        return {
            "principles_source": self.principles_source,
            "principle_set_id": self.principle_set_id or "none",
            "n_principles": self.n_principles,
        }


class PrinciplesModel(BaseModel):
    """The pointwise LLM judge with the principle set learned on `dataset`. The key names the
    dataset, not the set: the caller reads the dataset's current set and passes it to `build`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["principles"] = "principles"
    dataset: KeyPart
    max_concurrency: int = Field(DEFAULT_MAX_CONCURRENCY, ge=1)

    @property
    def is_llm(self) -> bool:
        return True

    @property
    def key(self) -> str:
        return f"principles:{self.dataset}"

    def build(
        self,
        client: LLMClient | None,
        scenario: str,
        principles: typing.Sequence[str],
        *,
        principle_set_id: str | None = None,
    ) -> PrinciplesJudge:
        """A `PointwiseJudge` with `scenario` and `principles`. When no principle survived
        (`principles` empty) it is the judge with its default principles, and
        `principles_source` says "default (no principle survived)" instead of "learned"."""
        from rm_rewards.judging.judges import PointwiseJudge

        if client is None:
            raise ValueError(f"model {self.key} is an LLM judge and needs an LLMClient: pass client")
        if principles:
            judge = PointwiseJudge(client=client, scenario=scenario, principles=list(principles))
            name, source = f"principles_{principle_set_id or self.dataset}", PRINCIPLES_LEARNED
        else:  # the same defaults llm_scores falls back to, so the two stay comparable
            judge = PointwiseJudge(client=client)
            name, source = f"principles_{self.dataset}_default", PRINCIPLES_DEFAULT
        judge.named(name)
        return PrinciplesJudge(judge, source, principle_set_id, len(principles))


EvaluatedModel = Annotated[RewardModel | CheckpointModel | PrinciplesModel, Field(discriminator="kind")]
_EVALUATED_MODEL = TypeAdapter(EvaluatedModel)


def parse_evaluated_model(data: Any) -> RewardModel | CheckpointModel | PrinciplesModel:
    """A model spec from config data, e.g. {"kind": "reward", "reward": "length_penalty"}."""
    return _EVALUATED_MODEL.validate_python(data)


# --- keys ----------------------------------------------------------------------------------------


class ModelKey(BaseModel):
    """A parsed key: `reward:length_penalty`, `judge:helpfulness_pointwise@1a2b3c4d`,
    `checkpoint:bt-0001`, `principles:helpsteer2`. `prefix` is the model's kind."""

    model_config = ConfigDict(frozen=True)

    prefix: ModelKind
    name: str
    variant: str | None = None

    @property
    def kind(self) -> ModelKind:
        return self.prefix


def parse_model_key(key: str) -> ModelKey:
    """The key's parts; `ValueError` naming the key when it does not fit the grammar."""
    match = _KEY.match(key) if isinstance(key, str) else None
    if match is None:
        raise ValueError(f"bad model key {key!r}: {_KEY_GRAMMAR}")
    prefix, name, variant = match.groups()
    if variant and prefix not in _VARIANT_KINDS:
        raise ValueError(f"bad model key {key!r}: a {prefix} key has no @variant")
    return ModelKey(prefix=prefix, name=name, variant=variant)


def model_kind(key: str) -> ModelKind:
    """The key's kind: "reward", "judge", "checkpoint" or "principles"; route on this, not on prefixes."""
    return parse_model_key(key).kind


def _reasons(exc: ValidationError) -> str:
    return "; ".join(error["msg"].removeprefix("Value error, ") for error in exc.errors())


def checkpoint_key(run_id: str) -> str:
    """`checkpoint:<run_id>`; a run id that cannot go into a key is a `ValueError`."""
    try:
        return CheckpointModel(run_id=run_id).key
    except ValidationError as exc:
        raise ValueError(f"no checkpoint key for run id {run_id!r}: {_reasons(exc)}") from None


def principles_key(dataset: str) -> str:
    """`principles:<dataset>`; a dataset name that cannot go into a key is a `ValueError`."""
    try:
        return PrinciplesModel(dataset=dataset).key
    except ValidationError as exc:
        raise ValueError(f"no principles key for dataset {dataset!r}: {_reasons(exc)}") from None


def model_from_key(
    key: str, *, checkpoint_path: str | None = None
) -> RewardModel | CheckpointModel | PrinciplesModel:
    """The spec a key names (a checkpoint gets `checkpoint_path`). A key with an @variant hashes
    parameters it cannot give back: build such models from their config and match on `.key`."""
    parsed = parse_model_key(key)
    if parsed.variant:
        raise ValueError(f"model key {key!r} names a parameter variant; build it from its config")
    try:
        if parsed.kind == "checkpoint":
            return CheckpointModel(run_id=parsed.name, path=checkpoint_path)
        if parsed.kind == "principles":
            return PrinciplesModel(dataset=parsed.name)
        model = RewardModel(reward=parsed.name)
    except ValidationError as exc:
        raise ValueError(f"model key {key!r}: {_reasons(exc)}") from None
    if model.key != key:
        raise ValueError(
            f"model key {key!r}: {parsed.name!r} is {'an LLM judge' if model.is_llm else 'a rule'}, "
            f"so its key is {model.key!r}"
        )
    return model


def _client_field(cls: type[Reward]) -> str | None:
    from rm_rewards.llm.client import LLMClient

    def mentions(annotation: Any) -> bool:
        return annotation is LLMClient or any(mentions(a) for a in typing.get_args(annotation))

    return next((name for name, f in cls.model_fields.items() if mentions(f.annotation)), None)
