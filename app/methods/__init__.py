"""The emulated REST methods. Importing this package registers every method in REGISTRY."""

from b24emu.methods import batch, events, im_notify, im_notify_manage, system, users  # noqa: F401
from b24emu.methods.registry import REGISTRY

__all__ = ["REGISTRY"]
