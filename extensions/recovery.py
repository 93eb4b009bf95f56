"""Recoveries that happen together share their reads of history.

Clients come back together: after a server restart, a deploy, a network blip, each of
them asks for the same pages of the same channel after the same position. ``RecentPages``
keeps each page read lately, for a second and within a bound of bytes, and lets a reader
wait for a page that is being read, so a thousand clients cost one read of each page and
one list of deliveries (their JSON envelopes made once, too).

A shared page must say what a read of one's own would have said:

- a *full* page (the history goes on after it, and is read next) always does: what was
  kept after a position does not change, and trimming since then only means the next
  read reports the loss;
- a *short* page, the end of the history, only if it was read after the subscriber
  subscribed: one read before could end before a message published in between, which
  the subscriber then would neither recover nor receive live (a gap).

Ticks order the two: a subscriber takes ``tick()`` once subscribed (and again once Redis
confirmed it after an outage), each read takes one as it starts.

Not for: what history keeps or whether a position can be recovered (``history``).
"""
import time
from itertools import count

from gevent.event import AsyncResult


class _Read:
    __slots__ = ('tick', 'started', 'result', 'size')

    def __init__(self, tick, started):
        self.tick = tick
        self.started = started
        self.result = AsyncResult()
        self.size = 0   # bytes counted against max_bytes once kept


class RecentPages:
    """Pages of history (lists of at most ``limit`` deliveries, or None where they
    cannot be recovered) by ``(channel, since, limit)``, shared by the readers of one
    process."""

    lifetime = 1.0          # seconds a page read is offered to others
    max_bytes = 16 << 20    # message bytes kept at most; larger pages are not kept

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._ticks = count(1)
        self._reads = {}    # (channel, since, limit) -> _Read, oldest first
        self._bytes = 0

    def tick(self):
        """Now, in the order of reads: a page read from a later tick is fresh for it."""
        return next(self._ticks)

    def get(self, channel, since, limit, after, read):
        """The page of ``channel`` after ``since`` for a subscriber subscribed at tick
        ``after``: a page shared by another reader where it may be, else ``read()``'s
        (made once for all who wait meanwhile)."""
        self._expire()
        key = (channel, since, limit)
        shared = self._reads.get(key)
        if shared is not None:
            page = shared.result.get()   # waits while it is being read
            if page is not None and (len(page) == limit or shared.tick > after):
                return page
        return self._read(key, read)

    def _read(self, key, read):
        mine = _Read(self.tick(), self._clock())
        self._forget(key)
        self._reads[key] = mine
        page = None
        try:
            page = read()
        finally:
            mine.result.set(page)   # those who wait read for themselves if it is None
            if self._reads.get(key) is mine:
                size = 0 if page is None else sum(len(item.message) for item in page)
                if page is None or self._bytes + size > self.max_bytes:
                    del self._reads[key]
                else:
                    mine.size = size
                    self._bytes += size
        return page

    def _forget(self, key):
        read = self._reads.pop(key, None)
        if read is not None:
            self._bytes -= read.size

    def _expire(self):
        oldest = self._clock() - self.lifetime
        while self._reads:
            key, read = next(iter(self._reads.items()))
            if read.started >= oldest or not read.result.ready():
                return
            self._forget(key)
