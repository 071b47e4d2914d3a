"""The autopilot: wvo-mcp launches coding CLIs as workers, one per task, and supervises them.

Pure parts (command lines, event streams, decisions) are separate from the process and git
work, like the rest of the package."""
