"""For skill authors: ``evaluate`` (metrics over labelled queries), ``lint`` (findings about
a collection), ``overlap`` (the skills the retriever confuses, on evidence), ``budget``
(``lint --budget``: the collection in Claude Code's skill listing), ``selfeval``
(``eval --self``: the collection's own questions, k-fold by item), ``trigger_files`` and
``triggers`` (``eval --triggers``: skill-creator trigger evals, read and scored), ``report``
(their self-contained HTML pages) and ``tune`` (fine-tuning the model on the collection's
texts).

May import ``api``, ``index``, ``search``, ``present``, ``load`` and the shared top-level
modules; only ``cli`` (and the benchmarks) import it.
"""
