"""The services: one transaction per behaviour, shared by the tools, the CLI and autopilot.

The services: one place per behaviour, shared by the MCP tools and the CLI."""
