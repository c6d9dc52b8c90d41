"""The registry of built-in rewards: name → kind, rule-or-LLM, area tags, a one-line description.

Reward modules register their classes with `@register(...)`; `get(name, **params)` validates
the parameters (a pydantic error names the bad one) and returns a ready, named instance.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from pydantic import ValidationError

from rm_rewards.core.kinds import Reward, RewardKind

# Modules whose import registers the built-in rewards. Loaded on first lookup, so importing the
# registry stays cheap.
BUILTIN_MODULES: tuple[str, ...] = (
    "rm_rewards.rules.general",
    "rm_rewards.rules.math",
    "rm_rewards.rules.style",
    "rm_rewards.rules.format",
    "rm_rewards.rules.code",
    "rm_rewards.rules.classifier",
    "rm_rewards.judging.alignment",
)


@dataclass(frozen=True)
class RewardSpec:
    name: str
    cls: type[Reward]
    tags: tuple[str, ...]
    description: str
    # Parameters a reward needs that have no default (e.g. an LLM client); listed for users.
    required_params: tuple[str, ...] = field(default=())

    @property
    def kind(self) -> RewardKind:
        return self.cls.kind

    @property
    def is_llm(self) -> bool:
        return self.cls.is_llm

    @property
    def source(self) -> str:
        return "llm" if self.is_llm else "rule"


_REGISTRY: dict[str, RewardSpec] = {}
_loaded = False


def register(name: str, *, tags: tuple[str, ...] | list[str], description: str):
    """Class decorator: add a reward class to the registry under `name`."""

    def decorate(cls: type[Reward]) -> type[Reward]:
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise ValueError(f"reward {name!r} is registered twice ({_REGISTRY[name].cls} and {cls})")
        if "\n" in description or not description.strip():
            raise ValueError(f"reward {name!r} needs a one-line description")
        required = tuple(
            n for n, f in cls.model_fields.items() if f.is_required()
        )
        _REGISTRY[name] = RewardSpec(name, cls, tuple(tags), description.strip(), required)
        return cls

    return decorate


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        for module in BUILTIN_MODULES:
            importlib.import_module(module)
        _loaded = True


def resolve_name(name: str) -> str:
    """The registered name `name` stands for: itself, or the rmforge equivalent of an RM-Gallery
    registry name (`rm_rewards.core.rm_gallery_names`). KeyError for an unknown name, and for an
    RM-Gallery name without an equivalent (the message says why)."""
    _load_builtins()
    if name in _REGISTRY:
        return name
    from rm_rewards.core.rm_gallery_names import RM_GALLERY_NAMES

    entry = RM_GALLERY_NAMES.get(name)
    if entry is None:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"no reward named {name!r}; known rewards: {known}")
    if entry.rmforge is None:
        raise KeyError(f"RM-Gallery reward {name!r} has no rmforge equivalent: {entry.note}")
    return entry.rmforge


def _alias_params(name: str) -> dict:
    """The parameters an RM-Gallery name implies (e.g. require_think for reasoning_tool_call_format)."""
    if name in _REGISTRY:
        return {}
    from rm_rewards.core.rm_gallery_names import RM_GALLERY_NAMES

    return dict(RM_GALLERY_NAMES[name].params)


def spec(name: str) -> RewardSpec:
    """The reward registered as `name`. Registered names only, so that names stored with scores
    and in model keys stay canonical: an RM-Gallery name gets a KeyError naming its equivalent
    (`get` and `resolve_name` accept those names)."""
    _load_builtins()
    if name not in _REGISTRY:
        target = resolve_name(name)  # raises for unknown and unsupported names
        raise KeyError(f"no reward named {name!r}: it is RM-Gallery's name for {target!r}; use {target!r}")
    return _REGISTRY[name]


def get(name: str, **params) -> Reward:
    """A ready instance of the registered reward `name`, configured with `params`.

    An RM-Gallery registry name gives its rmforge equivalent, named as registered here (so scores
    are stored under the rmforge name), with the parameters the mapping sets (yours override
    them). Bad parameters raise a ValueError (a
    pydantic ValidationError is one) that names the reward, each bad parameter and the
    parameters it accepts.
    """
    reward_spec = spec(resolve_name(name))
    params = {**_alias_params(name), **params}
    name = reward_spec.name
    try:
        reward = reward_spec.cls(**params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(parameters)'}: {error['msg']}" for error in exc.errors()
        )
        accepted = ", ".join(sorted(reward_spec.cls.model_fields)) or "none"
        raise ValueError(f"bad parameters for reward {name!r}: {problems} (accepted parameters: {accepted})") from exc
    return reward.named(name)


def specs(*, tag: str | None = None, kind: RewardKind | None = None, is_llm: bool | None = None) -> list[RewardSpec]:
    _load_builtins()
    out = sorted(_REGISTRY.values(), key=lambda s: s.name)
    if tag is not None:
        out = [s for s in out if tag in s.tags]
    if kind is not None:
        out = [s for s in out if s.kind == kind]
    if is_llm is not None:
        out = [s for s in out if s.is_llm == is_llm]
    return out


def format_table(rows: list[RewardSpec]) -> str:
    header = ("name", "kind", "source", "tags", "description")
    table = [header] + [(s.name, s.kind, s.source, ",".join(s.tags), s.description) for s in rows]
    widths = [max(len(r[c]) for r in table) for c in range(4)]
    lines = []
    for r in table:
        lines.append("  ".join(r[c].ljust(widths[c]) for c in range(4)) + "  " + r[4])
    return "\n".join(lines)
