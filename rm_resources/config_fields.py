"""Dagster config and resource fields taken from the pydantic model that owns them.

The trainers' configs (`training.config.BTTrainConfig`, `training.verl_config.VerlGRPOConfig`) are
plain pydantic models: they run where Dagster is not installed. A Dagster run config or resource
that exposes their knobs gets them from here, each field with the model's own type, default,
constraints and description, so none of them is written a second time:

    class TrainingRunConfig(model_fields_base(BTTrainConfig, dg.Config, exclude={"output_dir"})):
        datasets: list[str] = [...]   # only the knobs the trainer does not have

`defaults` names the few knobs whose default differs on purpose (a shorter schedule for a run
config, say); that different default is then written once, there.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, create_model

Base = TypeVar("Base", bound=BaseModel)


def model_fields_base(
    model: type[BaseModel],
    base: type[Base],
    *,
    only: Collection[str] | None = None,
    exclude: Collection[str] = (),
    defaults: Mapping[str, Any] | None = None,
) -> type[Base]:
    """A subclass of `base` (dg.Config, dg.ConfigurableResource) with `model`'s fields: all of them,
    or `only` those, less `exclude`; `defaults` replaces the default of the fields it names.
    A name that `model` does not have is an error, so a renamed trainer knob cannot drop out quietly."""
    defaults = dict(defaults or {})
    named = set(only or ()) | set(exclude) | set(defaults)
    unknown = sorted(named - set(model.model_fields))
    if unknown:
        raise ValueError(f"{model.__name__} has no fields {unknown}")
    fields: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if name in exclude or (only is not None and name not in only):
            continue
        if name in defaults:
            field = copy.copy(field)
            field.default = defaults.pop(name)
        fields[name] = (field.annotation, field)
    if defaults:
        raise ValueError(f"defaults for fields that are not taken: {sorted(defaults)}")
    return create_model(f"{model.__name__}Fields", __base__=base, __module__=base.__module__, **fields)
