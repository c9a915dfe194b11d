"""Node.js and Bun apps, in modules named after Railpack's node provider files so the two compare step for step."""

from starforge_dag.railpack.providers.node.node import NodeProvider

__all__ = ["NodeProvider"]
