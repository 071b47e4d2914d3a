"""Wiring wvo-mcp into a person's own repository: `wvo-mcp init` and `wvo-mcp doctor`."""
