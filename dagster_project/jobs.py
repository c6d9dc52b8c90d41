"""Jobs: the main job materializes the dataset-partitioned graph end to end."""

import dagster as dg

from rm_assets.partitions import dataset_partitions

main_job = dg.define_asset_job(
    "main_job",
    selection=dg.AssetSelection.groups("data", "scoring"),
    partitions_def=dataset_partitions,
    description="Raw rows → converted samples → scores, for one dataset partition per run.",
)
