"""The code location: every asset, check, job, schedule, sensor and resource of rmforge.

`defs` is lazy (`@dg.definitions`): importing this module reads no environment. Dagster calls it
when it loads the code location, and the settings (dagster_project.settings) are read then;
`build_definitions(settings)` builds the same Definitions from given settings (the CLI, tests).
"""

from __future__ import annotations

import dagster as dg

from dagster_project.jobs import (
    REPORT_JOBS,
    grm_train_job,
    leaderboard_job,
    main_job,
    train_job,
)
from dagster_project.schedules import build_schedules
from dagster_project.sensors import build_sensors
from dagster_project.settings import Settings, load_settings, resources_for
from rm_assets.benchmarks import assets as benchmark_assets
from rm_assets.benchmarks import checks as benchmark_checks
from rm_assets.checkpoints import assets as checkpoint_assets
from rm_assets.curation import assets as curation_assets
from rm_assets.data import assets as data_assets
from rm_assets.data import checks as data_checks
from rm_assets.judging import assets as judging_assets
from rm_assets.serving import assets as serving_assets
from rm_assets.serving import checks as serving_checks


def build_definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=dg.load_assets_from_modules(
            [data_assets, judging_assets, curation_assets, checkpoint_assets, benchmark_assets, serving_assets]
        ),
        asset_checks=dg.load_asset_checks_from_modules([data_checks, benchmark_checks, serving_checks]),
        jobs=[main_job, train_job, grm_train_job, *REPORT_JOBS, leaderboard_job],
        schedules=build_schedules(settings),
        sensors=build_sensors(settings),
        resources=resources_for(settings),
        # Steps run in separate processes (at most one per core) unless a run asks for in_process, as
        # `rmforge run` does: its short runs would spend most of their time starting processes.
        executor=dg.multi_or_in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_settings())
