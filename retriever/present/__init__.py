"""Step 6 of the flow: what a search returns, and every way it is shown.

``results`` (the typed, frozen results and the JSON contract of ``search --json``),
``markdown`` (prompt-ready Markdown within a budget), ``terminal`` (plain text for the
terminal).

May import ``index.documents`` (the kinds of document) and the shared top-level modules;
never ``search``, ``serve``, ``authoring``, ``cli`` or ``api`` (``search`` imports it).
"""
