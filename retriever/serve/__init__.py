"""Where agents reach the retriever: ``http`` (``retrieve serve``: JSON routes and MCP over
streamable HTTP), ``mcp`` (the MCP tools and resources; stdio), ``mcp_skills`` (the MCP
Skills extension), ``hook`` (``retrieve hook AGENT``: each agent's command hook), ``agents``
(their wire formats), ``hook_routes`` (the same hooks over HTTP), ``projects`` (a project's
own skill folders beside the user's), ``context`` (what a hook adds), ``loopback`` (the
command hook's HTTP client), ``discovery`` (finding a running server and proving it is that
server), ``live`` (``--watch``: rescan, rebuild and swap the served index), ``doctor``
(``retrieve doctor``: what a search would use).

May import ``api``, ``index``, ``present``, ``load`` and the shared top-level modules; only
``cli`` imports it. ``hook``, ``agents``, ``context``, ``loopback`` and ``discovery`` import
the standard library at module level: the command hook runs on every prompt.
"""
