"""For skill authors: ``evaluate`` (metrics over labelled queries), ``lint`` (findings about
a collection), ``overlap`` (near-twin skills and how much they collide), ``selfeval``
(``eval --self``: the collection's own questions, k-fold by item), ``report`` (its
self-contained HTML page) and ``tune`` (fine-tuning the model on the collection's texts).

May import ``api``, ``index``, ``search``, ``present``, ``load`` and the shared top-level
modules; only ``cli`` (and the benchmarks) import it.
"""
