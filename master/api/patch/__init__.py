"""The four ways to change an object by PATCH, as pure functions over JSON-shaped values.

- merge_patch: application/merge-patch+json (RFC 7386)
- json_patch: application/json-patch+json (RFC 6902)
- strategic_merge_patch: application/strategic-merge-patch+json (schema-aware, kubectl's)
- server_side_apply: application/apply-patch+yaml, with field ownership; record_update keeps
  ownership for ordinary writes.

None of them mutates its inputs, does I/O or reads the store; errors are StatusErrors.
"""

from .apply import record_update, server_side_apply
from .jsonpatch import json_patch
from .merge import merge_patch
from .strategic import strategic_merge_patch

__all__ = [
    "json_patch",
    "merge_patch",
    "record_update",
    "server_side_apply",
    "strategic_merge_patch",
]
