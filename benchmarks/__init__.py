"""Quality benchmarks of skill-retriever against its competitors (run from the repository root).

- ``python -m benchmarks.quality``: every system side by side on labelled queries.
- ``python -m benchmarks.variants``: variants of our ranking, tuned on one half of the dev
  skills and reported on the other half and on the hand-written held-out sets.
"""
