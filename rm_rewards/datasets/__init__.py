"""Raw preference data → `Sample`s: loading, HelpSteer2 / HH-RLHF conversion, quarantine.

The modules, each imported by its own path:

- `convert`: `convert_rows`, the one entry point from raw rows to samples (`stream_rows`: the same,
  made as they are read);
- `catalog`: the dataset formats, the built-in datasets and the datasets config file;
- `bundled`: where the real samples shipped in the package live;
- `quarantine`: `RowError`, `QuarantinedRow`, `ConversionStream` (what a converter returns),
  `ConversionResult` and the checked field readers;
- `keys`: content-derived sample ids and the hash-based train/test split;
- `samples`: building pointwise, listwise and A/B-swapped pair samples the same way everywhere;
- `messages`: chat messages inside rows ({role, content} lists, prompt checks, shared context);
- `helpsteer2`, `hh_rlhf`, `helpsteer3`, `trl`, `rm_gallery`: the per-format converters;
- `helpsteer2_restore`: NeMo-Aligner's templated HelpSteer2 rows back to the hub's schema;
- `sources`: the known datasets and reading their rows (bundled files, local files, the hub).

Note: inside this package `import datasets` still means Hugging Face `datasets` (absolute imports).
"""
