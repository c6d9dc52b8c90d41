"""Rule-based rewards: deterministic scoring functions wrapped in the reward kinds.

Each module keeps its bare scoring functions (plain `str -> float` code, unit-tested and
benchmarked on their own) apart from the thin reward classes that register them.
"""
