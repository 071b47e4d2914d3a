"""`python -m wvo_mcp`: the `wvo-mcp` command, run as a module."""

from wvo_mcp.cli import main

if __name__ == "__main__":
    main()
