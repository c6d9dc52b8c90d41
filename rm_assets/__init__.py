"""Dagster assets, asset checks and partitions of rmforge."""

import warnings

# Partitioned asset checks are "preview" in Dagster 1.13; we rely on them knowingly (one check
# result per dataset / benchmark partition), so don't repeat the warning in every step process.
warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")
# Each benchmark report depends on one dimension of its partition (the checkpoint's training run,
# the principles' dataset): MultiToSingleDimensionPartitionMapping is "beta", used knowingly.
warnings.filterwarnings("ignore", message="Class `MultiToSingleDimensionPartitionMapping` is currently in beta")
