"""wvo-mcp: an MCP server that hands a shared task graph to coding agents."""

__version__ = "0.1.0"
