"""The emulated REST methods. Importing this package registers every method in REGISTRY."""

from app.methods import batch, im_notify, im_notify_manage, system, users  # noqa: F401
from app.methods.registry import REGISTRY

__all__ = ["REGISTRY"]
