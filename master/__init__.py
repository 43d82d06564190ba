"""The bramble control plane: the API server, its store, and (later) scheduler and controllers."""
