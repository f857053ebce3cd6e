"""Where agents reach the retriever: ``http`` (``retrieve serve``: JSON routes and MCP over
streamable HTTP), ``mcp`` (the MCP tools and resources; stdio), ``hook`` (``retrieve hook``:
the skills for each prompt), ``discovery`` (finding a running server and proving it is that
server), ``live`` (``--watch``: rescan, rebuild and swap the served index), ``doctor``
(``retrieve doctor``: what a search would use).

May import ``api``, ``index``, ``present``, ``load`` and the shared top-level modules; only
``cli`` imports it. ``hook`` and ``discovery`` import the standard library at module level:
the hook runs on every prompt.
"""
