"""The emulated REST methods. Importing this package registers every method in REGISTRY."""

from b24emu.methods import (  # noqa: F401
    batch,
    departments,
    events,
    im_notify,
    im_notify_manage,
    system,
    users,
)
from b24emu.methods.registry import REGISTRY

__all__ = ["REGISTRY"]
