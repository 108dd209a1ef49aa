"""A two-lane mailbox: control messages always before data, data bounded, stash while paused."""

from __future__ import annotations

from collections import deque

import anyio

from actors._errors import MailboxFullError, StashOverflowError


class Mailbox:
    """The queues of one actor. Not thread-safe: every call comes from the event loop thread.

    * ``control``: unbounded, always served first (stop, kill, child exits, replies, and
      user messages marked with ``control_message``). Pause and resume act on the
      mailbox at once, without queueing.
    * ``data``: bounded by ``capacity``; senders wait for room (backpressure).
    * ``stash``: while paused, data messages land here instead, up to ``stash_capacity``;
      the data lane is frozen. On resume the data lane is served first, then the stash, so
      messages come out in the order they went in.
    """

    __slots__ = (
        "_receiver_waiting",
        "_room_waiters",
        "capacity",
        "control",
        "data",
        "owner_id",
        "paused",
        "stash",
        "stash_capacity",
    )

    def __init__(self, owner_id: str, capacity: int, stash_capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"mailbox capacity must be >= 1, got {capacity!r}")
        if stash_capacity < 0:
            raise ValueError(f"stash capacity must be >= 0, got {stash_capacity!r}")
        self.owner_id = owner_id
        self.capacity = capacity
        self.stash_capacity = stash_capacity
        self.control: deque[object] = deque()
        self.data: deque[object] = deque()
        # Lists, not deques: an empty deque costs ~600 bytes, and these are rarely used
        # (the stash is only appended to and moved whole; few senders ever wait for room).
        self.stash: list[object] = []
        self.paused = False
        self._receiver_waiting: anyio.Event | None = None
        self._room_waiters: list[anyio.Event] = []

    def __len__(self) -> int:
        return len(self.control) + len(self.data) + len(self.stash)

    # -- receiver side ------------------------------------------------------------------

    def wake_receiver(self) -> None:
        """Wake the receiver if it is waiting for a message."""
        waiting = self._receiver_waiting
        if waiting is not None:
            self._receiver_waiting = None
            waiting.set()

    async def wait_for_message(self) -> None:
        """Block until something is put in a lane the receiver serves."""
        event = anyio.Event()
        self._receiver_waiting = event
        await event.wait()

    def pause(self) -> None:
        """Freeze the data lane; new data messages go to the stash."""
        self.paused = True

    def resume(self) -> None:
        """Unfreeze: the data lane, then the stash, in arrival order."""
        if not self.paused:
            return
        self.paused = False
        if self.stash:
            self.data.extend(self.stash)
            self.stash.clear()
        self.wake_receiver()

    def took_data(self) -> None:
        """Tell one sender waiting for room that there may be some now."""
        if self._room_waiters and len(self.data) < self.capacity:
            self._room_waiters.pop(0).set()

    # -- sender side --------------------------------------------------------------------

    def put_control(self, message: object) -> None:
        """Queue a control message (never blocks, never full)."""
        self.control.append(message)
        self.wake_receiver()

    def try_put_data(self, message: object) -> bool:
        """Queue a data message if there is room; False if the caller must wait.

        :raises StashOverflowError: if paused and the stash is full.
        """
        if self.paused:
            if len(self.stash) >= self.stash_capacity:
                raise StashOverflowError(self.owner_id, self.stash_capacity)
            self.stash.append(message)
            return True
        if len(self.data) >= self.capacity:
            return False
        self.data.append(message)
        self.wake_receiver()
        return True

    def put_data_nowait(self, message: object) -> None:
        """Queue a data message.

        :raises MailboxFullError: if the data lane is full.
        :raises StashOverflowError: if paused and the stash is full.
        """
        if not self.try_put_data(message):
            raise MailboxFullError(self.owner_id, self.capacity)

    async def wait_for_room(self) -> None:
        """Block until the receiver takes a data message (or the mailbox is closed)."""
        event = anyio.Event()
        self._room_waiters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                self.took_data()  # we were woken but will not use the room: pass it on
            else:
                self._room_waiters.remove(event)
            raise

    def wake_all_senders(self) -> None:
        """Wake every waiting sender (the receiver died: they must not wait forever)."""
        while self._room_waiters:
            self._room_waiters.pop(0).set()

    def drain(self) -> list[object]:
        """Remove and return everything queued, control first, in order."""
        items = [*self.control, *self.data, *self.stash]
        self.control.clear()
        self.data.clear()
        self.stash.clear()
        return items
