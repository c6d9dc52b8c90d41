"""The code location: every asset, check, job, schedule, sensor and resource of rmforge."""

import dagster as dg

from dagster_project.jobs import benchmark_job, grm_train_job, main_job, train_job
from dagster_project.profiles import current_profile, resources_for
from dagster_project.schedules import benchmark_schedule
from dagster_project.sensors import new_checkpoint_sensor
from rm_assets.benchmarks import assets as benchmark_assets
from rm_assets.benchmarks import checks as benchmark_checks
from rm_assets.checkpoints import assets as checkpoint_assets
from rm_assets.data import assets as data_assets
from rm_assets.data import checks as data_checks
from rm_assets.judging import assets as judging_assets

# Steps run in separate processes; two at a time matches the 2-core default machine.
executor = dg.multiprocess_executor.configured({"max_concurrent": 2})

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([data_assets, judging_assets, checkpoint_assets, benchmark_assets]),
    asset_checks=dg.load_asset_checks_from_modules([data_checks, benchmark_checks]),
    jobs=[main_job, train_job, grm_train_job, benchmark_job],
    schedules=[benchmark_schedule],
    sensors=[new_checkpoint_sensor],
    resources=resources_for(current_profile()),
    executor=executor,
)
