"""Benchmarks: load RM-Bench, RewardBench 2, RMB and JudgeBench, and score them exactly as their own
code does.

items = load_benchmark("rm_bench")                     # bundled sample; source="hub" in production
samples = items_to_samples(items)                      # for any reward's evaluate_batch
table = scores_from_results(items, reward.evaluate_batch(samples))
report = score_benchmark("rm_bench", items, table)     # report.to_markdown(), report.summary()

result = evaluate_model("rm_bench", items, RewardModel(reward="length_penalty"))  # or evaluate(...)

JudgeBench ships no rows: `benchmark_source("judge_bench", files={"judge_bench": [path]})` (or
mode="hub") says where they come from, and `NoBenchmarkSource` says how to configure one.

Evaluated models and their keys (`model_keys`): `reward:<rule>`, `judge:<llm judge>`,
`checkpoint:<run>`, `principles:<dataset>`; `model_from_key(key)` gives the spec back,
`model_kind(key)` routes, `checkpoint_key(run)` / `principles_key(dataset)` build keys.

Each name is imported from the module that holds it: `loaders` (load_benchmark, benchmark_source),
`items` (items_to_samples, scores_from_results), `metrics` (score_benchmark and each benchmark's
exact scoring), `evaluate` (evaluate, evaluate_model), `report_models` / `report_render` (reports
and their markdown), `judge_bench`, `pair_judging`, `consistency`, `model_keys`, `leaderboard`,
`promotion`, `plots`.
"""
