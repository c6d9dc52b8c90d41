"""The code location: every asset, check, job, schedule, sensor and resource of rmforge."""

import dagster as dg

from dagster_project.jobs import (
    REPORT_JOBS,
    grm_train_job,
    leaderboard_job,
    main_job,
    train_job,
)
from dagster_project.profiles import current_profile, resources_for
from dagster_project.schedules import SCHEDULES
from dagster_project.sensors import leaderboard_sensor, new_checkpoint_sensor
from rm_assets.benchmarks import assets as benchmark_assets
from rm_assets.benchmarks import checks as benchmark_checks
from rm_assets.checkpoints import assets as checkpoint_assets
from rm_assets.curation import assets as curation_assets
from rm_assets.data import assets as data_assets
from rm_assets.data import checks as data_checks
from rm_assets.judging import assets as judging_assets
from rm_assets.serving import assets as serving_assets
from rm_assets.serving import checks as serving_checks

defs = dg.Definitions(
    assets=dg.load_assets_from_modules(
        [data_assets, judging_assets, curation_assets, checkpoint_assets, benchmark_assets, serving_assets]
    ),
    asset_checks=dg.load_asset_checks_from_modules([data_checks, benchmark_checks, serving_checks]),
    jobs=[main_job, train_job, grm_train_job, *REPORT_JOBS, leaderboard_job],
    schedules=SCHEDULES,
    sensors=[new_checkpoint_sensor, leaderboard_sensor],
    resources=resources_for(current_profile()),
    # Steps run in separate processes (at most one per core) unless a run asks for in_process, as
    # `rmforge run` does: its short runs would spend most of their time starting processes.
    executor=dg.multi_or_in_process_executor,
)
