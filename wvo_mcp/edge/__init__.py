"""Everything that answers a caller: MCP tools, stdio, HTTP, access and the dashboard.

Everything that answers a caller: the MCP server and its tools, stdio, HTTP with its access
and rate limits, and the dashboard. Thin over the orchestrator; no rule is decided here."""
