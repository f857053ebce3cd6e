"""Step 5 of the flow: a query against an opened index.

``query`` (a query made safe to embed and match), ``rank`` (the ranking rule, whole:
aggregation, BM25 and trigger terms, the weak decision and the confidence:
``ScoringConfig``), ``handoffs`` (which handoff rules of the top skills fire), ``answers``
(which matched gotchas lead, which handoffs are worth showing), ``searcher`` (the query
path, tying those together into ``present.results``).

May import ``index``, ``present.results`` and the shared top-level modules; never
``serve``, ``authoring``, ``cli`` or ``api``.
"""
