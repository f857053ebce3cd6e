"""Benchmarks of skill-retriever (run from the repository root).

- ``python -m benchmarks.quality``: every system side by side on labelled queries.
- ``python -m benchmarks.variants``: variants of our ranking, tuned on one half of the dev
  skills and reported on the other half and on the hand-written held-out sets.
- ``python -m benchmarks.speed``: start-up, query latency, builds, memory, scale.
- ``python -m benchmarks.query_profile``: where a query's time goes.
- ``python -m benchmarks.query_ab --base OLD_TREE``: two trees' query latency, interleaved.
"""
