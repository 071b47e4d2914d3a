"""The services: one place per behaviour, shared by the MCP tools and the CLI."""
