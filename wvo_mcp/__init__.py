"""wvo-mcp: an MCP server that hands a shared task graph to coding agents.

Where does the code do X? docs/architecture.md opens with "Where it happens": each behaviour,
from its tool or command to the function that acts (`file:function`)."""

__version__ = "0.1.0"
