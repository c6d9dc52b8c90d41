"""Which datasets exist: the built-in ones, plus those a user registers in a datasets file.

A dataset is a name, a format (which converter reads its rows) and a source (bundled files, a
local file, or a hub dataset). The built-in datasets are defined here; a YAML file adds the user's
own, so a new dataset needs no code change:

    # datasets.yaml
    datasets:
      my_prefs:                      # the partition key: lower case letters, digits, _
        format: trl                  # see FORMATS
        path: data/my_prefs.jsonl    # .jsonl[.gz] / .json[.gz] / .parquet, relative to this file
        description: preference pairs from our labelling tool
      hs3:
        format: helpsteer3
        hub: {repo_id: nvidia/HelpSteer3, data_dir: preference, split: train}
      helpsteer2_preference:         # a built-in with no bundled rows: give it a source
        path: /data/helpsteer2_preference.parquet
    bundled_defaults: true           # false: drop the three bundled defaults from the partitions

Everything is checked when the file is read (an unknown format, a missing file, a column the
format needs missing from the file's first row), and the error names the dataset and the field,
so a misconfigured dataset fails the definitions load instead of becoming an empty partition.
Hub datasets are checked the same way when their rows arrive (`check_columns`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rm_rewards.datasets.quarantine import ConversionStream

DATASET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class UnknownDatasetError(ValueError):
    pass


class DatasetConfigError(ValueError):
    """A dataset entry that cannot work; the message names the file, the dataset and the field."""


class HubSource(BaseModel):
    """Arguments for `datasets.load_dataset(repo_id, name=config_name, data_dir=..., split=...)`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repo_id: str
    config_name: str | None = None
    data_dir: str | None = None
    split: str = "train"


Converter = Callable[[str, list[Any], float], ConversionStream]


class DatasetFormat(BaseModel):
    """A row schema: the converter that reads it and the columns every row must have."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    name: str
    description: str
    # Alternatives: a row is readable when it has every column of at least one of them.
    required_columns: tuple[tuple[str, ...], ...]
    converter_path: str  # "module:function", imported on first use (converters import pandas etc.)

    def converter(self) -> Converter:
        import importlib

        module, function = self.converter_path.split(":")
        return getattr(importlib.import_module(module), function)

    def missing_columns(self, row: Mapping[str, Any]) -> list[str] | None:
        """None when `row` has one full set of required columns, else the closest set's missing ones."""
        missing = [[column for column in needed if column not in row] for needed in self.required_columns]
        if any(not columns for columns in missing):
            return None
        return min(missing, key=len)


def _format(name: str, description: str, columns: tuple[tuple[str, ...], ...], path: str) -> DatasetFormat:
    return DatasetFormat(name=name, description=description, required_columns=columns, converter_path=path)


FORMATS: dict[str, DatasetFormat] = {
    f.name: f
    for f in (
        _format(
            "trl", "TRL preference rows: prompt/chosen/rejected (strings or chat-message lists), or "
            "chosen/rejected whole conversations (implicit prompt)",
            (("chosen", "rejected"),), "rm_rewards.datasets.trl:convert_trl",
        ),
        _format(
            "chat_pairs", "chosen/rejected chat-message lists sharing every turn but the last assistant reply",
            (("chosen", "rejected"),), "rm_rewards.datasets.trl:convert_trl",
        ),
        _format(
            "helpsteer2", "HelpSteer2 ratings (prompt, response, five 0-4 attributes); preference rows also read",
            (("prompt", "response", "helpfulness"), ("prompt", "response_1", "response_2", "preference_strength")),
            "rm_rewards.datasets.helpsteer2:convert_helpsteer2",
        ),
        _format(
            "helpsteer2_preference", "HelpSteer2 preference subset: prompt, response_1, response_2, "
            "preference_strength -3..3",
            (("prompt", "response_1", "response_2", "preference_strength"),),
            "rm_rewards.datasets.helpsteer2:convert_helpsteer2",
        ),
        _format(
            "helpsteer3", "HelpSteer3 preference: context messages, response1, response2, overall_preference -3..3",
            (("context", "response1", "response2", "overall_preference"),),
            "rm_rewards.datasets.helpsteer3:convert_helpsteer3",
        ),
        _format(
            "hh_rlhf", "Anthropic HH-RLHF: chosen/rejected dialogues (\\n\\nHuman:/\\n\\nAssistant: strings or "
            "messages), or RM-Gallery's early evaluation_sample schema",
            (("chosen", "rejected"), ("evaluation_sample",)), "rm_rewards.datasets.hh_rlhf:convert_hh_rlhf",
        ),
        _format(
            "rm_gallery", "RM-Gallery DataSample JSON: unique_id, input messages, output answers with labels",
            (("input", "output"),), "rm_rewards.datasets.rm_gallery:convert_rm_gallery",
        ),
    )
}


class DatasetInfo(BaseModel):
    """One dataset: its format and where its rows come from (bundled files, a local file, the hub)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    format: str
    description: str
    bundled_files: tuple[str, ...] = ()  # paths under rm_rewards/bundled_data (built-ins only)
    hub: HubSource | None = None
    path: Path | None = None  # a local file (from a datasets file)
    origin: str = "built-in"  # "built-in", or the datasets file that registered it
    # True when the datasets file named the source (`path` or `hub`): the rows are read only from
    # there. False for the built-ins, which the dataset resource's mode points at bundled files, a
    # local folder or their hub defaults.
    own_source: bool = False

    @property
    def dataset_format(self) -> DatasetFormat:
        return FORMATS[self.format]


BUILTIN_DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo(
            name="helpsteer2",
            format="helpsteer2",
            description="HelpSteer2 ratings: prompt, response, five 0-4 attributes "
            "(bundled: 8 validation rows restored from NeMo-Aligner's test fixture)",
            bundled_files=("helpsteer2/validation_sample.jsonl",),
            hub=HubSource(repo_id="nvidia/HelpSteer2"),
        ),
        DatasetInfo(
            name="helpsteer2_preference",
            format="helpsteer2_preference",
            description="HelpSteer2 preference subset: prompt, response_1, response_2, "
            "preference_strength -3..3 (hub or local only: no real rows could be bundled)",
            hub=HubSource(repo_id="nvidia/HelpSteer2", data_dir="preference"),
        ),
        DatasetInfo(
            name="hh_rlhf_helpful",
            format="hh_rlhf",
            description="Anthropic HH-RLHF helpful pairs "
            "(bundled: 1,137 pairs in RM-Gallery's early schema; the hub has chosen/rejected strings)",
            bundled_files=("hh_rlhf/anthropic_helpful_0521.jsonl",),
            hub=HubSource(repo_id="Anthropic/hh-rlhf", data_dir="helpful-base"),
        ),
        DatasetInfo(
            name="hh_rlhf_harmless",
            format="hh_rlhf",
            description="Anthropic HH-RLHF harmless-base pairs (bundled: the 2,312-row test split)",
            bundled_files=("hh_rlhf/harmless-base_test.jsonl.gz",),
            hub=HubSource(repo_id="Anthropic/hh-rlhf", data_dir="harmless-base"),
        ),
    )
}

# The dataset partitions every project has unless its datasets file says `bundled_defaults: false`.
BUNDLED_DEFAULTS = ("helpsteer2", "hh_rlhf_helpful", "hh_rlhf_harmless")


class DatasetCatalog(BaseModel):
    """The known datasets, and which of them are partitions of the data stage (in order)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    datasets: dict[str, DatasetInfo] = Field(default_factory=lambda: dict(BUILTIN_DATASETS))
    partitions: tuple[str, ...] = BUNDLED_DEFAULTS
    source_file: Path | None = None

    def get(self, name: str) -> DatasetInfo:
        try:
            return self.datasets[name]
        except KeyError:
            where = f" (datasets file: {self.source_file})" if self.source_file else ""
            raise UnknownDatasetError(
                f"unknown dataset {name!r}; known: {', '.join(self.datasets)}{where}"
            ) from None


def builtin_catalog() -> DatasetCatalog:
    return DatasetCatalog()


def dataset_info(dataset: str) -> DatasetInfo:
    """A built-in dataset's entry (datasets from a file: `DatasetCatalog.get`)."""
    return builtin_catalog().get(dataset)


def list_datasets() -> list[DatasetInfo]:
    """The built-in datasets, with their bundled files and hub defaults."""
    return list(BUILTIN_DATASETS.values())


_ENTRY_KEYS = {"format", "path", "hub", "description"}
_TOP_KEYS = {"datasets", "bundled_defaults"}


def load_catalog(path: Path | str) -> DatasetCatalog:
    """The built-in datasets plus the entries of the YAML datasets file at `path`, all checked."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise DatasetConfigError(f"datasets file {path} does not exist")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise DatasetConfigError(f"{path}: not valid YAML: {error}") from None
    return catalog_from_config(document if document is not None else {}, source_file=path)


def catalog_from_config(document: Any, *, source_file: Path) -> DatasetCatalog:
    """`load_catalog` on an already-parsed document (relative paths resolve against `source_file`)."""
    where = str(source_file)
    if not isinstance(document, Mapping):
        raise DatasetConfigError(f"{where}: expected a mapping with a 'datasets' key, got {type(document).__name__}")
    unknown = sorted(set(document) - _TOP_KEYS)
    if unknown:
        raise DatasetConfigError(f"{where}: unknown keys {unknown}; expected {sorted(_TOP_KEYS)}")
    defaults = document.get("bundled_defaults", True)
    if not isinstance(defaults, bool):
        raise DatasetConfigError(f"{where}: bundled_defaults must be true or false, got {defaults!r}")
    entries = document.get("datasets") or {}
    if not isinstance(entries, Mapping):
        raise DatasetConfigError(f"{where}: 'datasets' must map dataset names to entries")
    datasets = dict(BUILTIN_DATASETS)
    partitions = list(BUNDLED_DEFAULTS) if defaults else []
    for name, entry in entries.items():
        info = _entry(where, source_file.parent, name, entry)
        datasets[info.name] = info
        if info.name not in partitions:
            partitions.append(info.name)
    if not partitions:
        raise DatasetConfigError(f"{where}: no datasets (bundled_defaults is false and none are registered)")
    return DatasetCatalog(datasets=datasets, partitions=tuple(partitions), source_file=source_file)


def _entry(where: str, base: Path, name: Any, entry: Any) -> DatasetInfo:
    if not isinstance(name, str) or not DATASET_NAME.match(name):
        raise DatasetConfigError(
            f"{where}: dataset name {name!r} is not allowed: use lower-case letters, digits and _ "
            "(starting with a letter, at most 63 characters); it becomes a partition key and a table value"
        )
    if entry is None:
        entry = {}
    if not isinstance(entry, Mapping):
        raise DatasetConfigError(f"{where}: dataset {name!r}: expected a mapping of {sorted(_ENTRY_KEYS)}")
    unknown = sorted(set(entry) - _ENTRY_KEYS)
    if unknown:
        raise DatasetConfigError(f"{where}: dataset {name!r}: unknown fields {unknown}; expected {sorted(_ENTRY_KEYS)}")
    if "path" in entry and "hub" in entry:
        raise DatasetConfigError(f"{where}: dataset {name!r}: give either 'path' or 'hub', not both")
    builtin = BUILTIN_DATASETS.get(name)
    fmt = entry.get("format", builtin.format if builtin else None)
    if fmt is None:
        raise DatasetConfigError(f"{where}: dataset {name!r}: field 'format' is missing; one of {', '.join(FORMATS)}")
    if fmt not in FORMATS:
        raise DatasetConfigError(
            f"{where}: dataset {name!r}: field 'format': unknown format {fmt!r}; one of {', '.join(FORMATS)}"
        )
    if builtin and fmt != builtin.format:
        raise DatasetConfigError(
            f"{where}: dataset {name!r} is built in with format {builtin.format!r}; register other data under a new name"
        )
    description = entry.get("description", builtin.description if builtin else f"{fmt} rows ({where})")
    if not isinstance(description, str):
        raise DatasetConfigError(f"{where}: dataset {name!r}: field 'description' must be text")
    path = _path(where, base, name, entry) if "path" in entry else None
    hub = _hub(where, name, entry["hub"]) if "hub" in entry else None
    if builtin is None and path is None and hub is None:
        raise DatasetConfigError(f"{where}: dataset {name!r}: needs a source: field 'path' (a local file) or 'hub'")
    if path is not None:
        _check_file_columns(where, name, FORMATS[fmt], path)
    if builtin is not None:
        if path is None and hub is None:
            return builtin.model_copy(update={"origin": where})
        # A built-in given its own source reads only from there (no bundled files, no hub default).
        return builtin.model_copy(
            update={"path": path, "hub": hub, "bundled_files": (), "origin": where, "own_source": True}
        )
    return DatasetInfo(
        name=name, format=fmt, description=description, path=path, hub=hub, origin=where, own_source=True
    )


def _path(where: str, base: Path, name: str, entry: Mapping[str, Any]) -> Path:
    from rm_rewards.datasets.sources import LOCAL_SUFFIXES

    value = entry["path"]
    if not isinstance(value, str) or not value:
        raise DatasetConfigError(f"{where}: dataset {name!r}: field 'path' must be a file path")
    path = Path(value).expanduser()
    path = path if path.is_absolute() else (base / path).resolve()
    if not path.name.endswith(LOCAL_SUFFIXES):
        raise DatasetConfigError(
            f"{where}: dataset {name!r}: field 'path': {path.name} is not one of {', '.join(LOCAL_SUFFIXES)}"
        )
    if not path.is_file():
        raise DatasetConfigError(f"{where}: dataset {name!r}: field 'path': no file at {path}")
    return path


def _hub(where: str, name: str, value: Any) -> HubSource:
    from pydantic import ValidationError

    if isinstance(value, str):
        value = {"repo_id": value}
    try:
        return HubSource.model_validate(value)
    except ValidationError as error:
        problems = "; ".join(f"hub.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise DatasetConfigError(f"{where}: dataset {name!r}: field {problems}") from None


def _check_file_columns(where: str, name: str, fmt: DatasetFormat, path: Path) -> None:
    from rm_rewards.datasets.sources import first_row

    try:
        row = first_row(path)
    except ValueError as error:
        raise DatasetConfigError(f"{where}: dataset {name!r}: field 'path': {error}") from None
    if row is None:
        raise DatasetConfigError(f"{where}: dataset {name!r}: field 'path': {path} holds no rows")
    _check_row(f"{where}: dataset {name!r} ({path.name}, row 0)", fmt, row)


def _check_row(where: str, fmt: DatasetFormat, row: Any) -> None:
    if not isinstance(row, Mapping):
        raise DatasetConfigError(f"{where}: expected a JSON object per row, got {type(row).__name__}")
    missing = fmt.missing_columns(row)
    if missing is not None:
        raise DatasetConfigError(
            f"{where}: column {missing[0]!r} is missing for format {fmt.name!r} "
            f"(missing: {', '.join(missing)}; the row has: {', '.join(sorted(map(str, row))) or 'nothing'})"
        )


def check_columns(info: DatasetInfo, rows: list[Any]) -> None:
    """Raise when the first row lacks a column the format needs (rows read from the hub or a local dir).

    Only the first row: a schema problem shows there, while a single bad row later is the
    converter's to quarantine (naming its index and field), not a reason to refuse the dataset.
    """
    if not rows:
        raise DatasetConfigError(f"dataset {info.name!r}: the source returned no rows")
    _check_row(f"dataset {info.name!r} (row 0)", info.dataset_format, rows[0])
