"""The node's container runtime.

- types.py: the contract (plain dataclasses) between the pod logic and a runtime.
- config.py: Podman's configuration for bramble's own store (pure decisions + file writes).
- podman.py: the Podman implementation, the only module that imports `podman`.

Importing this package imports neither Podman nor its client.
"""
