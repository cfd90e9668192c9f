"""The composition root: the ASGI app, the CLI and the one module that wires events and jobs."""
