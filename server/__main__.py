"""`python -m server` starts the server, exactly like the `backprop-lens` command."""

from server.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
