"""The live dashboard on the HTTP server (docs/dashboard.md)."""
