"""Long-lived background tasks that come back if they die (the engine's own supervisor)."""

from engine.tasks import KeptAlive

__all__ = ["KeptAlive"]
