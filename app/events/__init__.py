"""Events: handlers bound with `event.bind`, firing, background delivery, the offline queue.

`fire(emulator, portal, event, data, user_id=None)` is the one way to make an event happen
(see `b24emu.events.firing`); `b24emu.events.worker` delivers online events, `store` keeps the
tables, `catalog` knows which events exist, `hosts` decides where handlers may live.
"""

from b24emu.events.firing import fire

__all__ = ["fire"]
