"""Channel history: which channels keep their recent messages, where, and whether a
subscriber's position can still be recovered from what is kept.

``extensions.pubsub`` uses it; a project configures it with::

    SUPERSERVER_CHANNEL_HISTORY = {
        'group:chat-*': {'size': 500, 'ttl': 3600},   # fnmatch pattern: first match wins
        'user:*': {'ttl': 600},
    }

``size`` is how many messages are kept, ``ttl`` how many seconds each one is; channels
that match no pattern keep nothing.

Positions. Each kept message gets a position ``'<ms>-<n>'``: ``ms`` is the time of
publication (never going back), ``n`` an ordinal one above the previous message's. A
history that is made anew (the first message, after it expired, after Redis lost its
data) starts its ordinals at ``ms * 1000``, above any ordinal of an earlier history of
that channel; so the ordinals of a history have no holes, and a position that is not
one of them is recognised as unrecoverable, never mistaken for a recent one. With Redis
the position is the ID of the entry in the channel's stream.

``recoverable`` decides from a ``Snapshot`` (what was kept at one moment) without I/O;
``MemoryHistory`` and ``RedisHistory`` store messages and take snapshots.
"""
import time
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from itertools import islice
from typing import NamedTuple

__all__ = ['BEGINNING', 'Position', 'parse_position', 'Policy', 'HistoryRules', 'Snapshot',
           'recoverable', 'MemoryHistory', 'RedisHistory']

#: The position before every message: ``subscribe(channel, since=BEGINNING)`` delivers
#: everything still kept.
BEGINNING = '0-0'


class Position(NamedTuple):
    """A parsed position. ``n == 0`` (with ``ms`` > 0) is never a message's: it stands
    for "this channel kept nothing at time ``ms``" (a subscriber's starting point)."""
    ms: int
    n: int

    def __str__(self):
        return '%d-%d' % self

    @classmethod
    def parse(cls, text):
        """The position ``text`` names (trusted: one we made)."""
        ms, _, n = text.partition('-')
        return cls(int(ms), int(n))


def parse_position(text):
    """The ``Position`` of a position string from a client, or None if it is not one
    (it then counts as too old, never as an error)."""
    if not isinstance(text, str):
        return None
    ms, dash, n = text.partition('-')
    if not (dash and ms.isdigit() and n.isdigit() and ms.isascii() and n.isascii()
            and len(ms) <= 15 and len(n) <= 18):
        return None
    position = Position(int(ms), int(n))
    if position.n == 0 and position.ms != 0:
        return None   # our own "kept nothing" marker, never handed out
    return position


def now_ms():
    return int(time.time() * 1000)


# -- what is kept ------------------------------------------------------------------------

@dataclass(frozen=True)
class Policy:
    """How much of one channel's history is kept: ``size`` messages, ``ttl`` seconds."""
    size: int | None = None
    ttl: float | None = None

    def __post_init__(self):
        if self.size is None and self.ttl is None:
            raise ValueError('give size, ttl or both')
        if self.size is not None and (isinstance(self.size, bool)
                                      or not isinstance(self.size, int) or self.size < 1):
            raise ValueError('size must be a positive integer, not %r' % (self.size,))
        if self.ttl is not None and (isinstance(self.ttl, bool)
                                     or not isinstance(self.ttl, (int, float))
                                     or not self.ttl >= 0.001):
            raise ValueError('ttl must be a positive number of seconds, not %r' % (self.ttl,))

    @property
    def ttl_ms(self):
        return None if self.ttl is None else int(self.ttl * 1000)


class HistoryRules:
    """The ``SUPERSERVER_CHANNEL_HISTORY`` setting: fnmatch pattern -> ``{'size', 'ttl'}``,
    checked when made (ValueError names the bad entry); the first match wins."""

    def __init__(self, patterns=None):
        if patterns is None:
            patterns = {}
        if not isinstance(patterns, dict):
            raise ValueError('SUPERSERVER_CHANNEL_HISTORY must be a dict of channel pattern '
                             '-> {"size": ..., "ttl": ...}, not %r' % (patterns,))
        self._rules = []
        for pattern, options in patterns.items():
            if not isinstance(pattern, str) or not pattern:
                raise ValueError('SUPERSERVER_CHANNEL_HISTORY: %r is not a channel pattern'
                                 % (pattern,))
            if not isinstance(options, dict) or not set(options) <= {'size', 'ttl'}:
                raise ValueError('SUPERSERVER_CHANNEL_HISTORY[%r] must be a dict with "size" '
                                 'and/or "ttl", not %r' % (pattern, options))
            try:
                policy = Policy(**options)
            except ValueError as error:
                raise ValueError('SUPERSERVER_CHANNEL_HISTORY[%r]: %s' % (pattern, error)) \
                    from None
            self._rules.append((pattern, policy))
        self.policy_for = lru_cache(maxsize=4096)(self._policy_for)

    def _policy_for(self, channel):
        """The ``Policy`` of ``channel``, or None: it keeps no history."""
        for pattern, policy in self._rules:
            if fnmatchcase(channel, pattern):
                return policy
        return None


# -- recovery ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Snapshot:
    """What a channel's history held at one moment, as seen from a position ``since``.

    ``first`` is the oldest message still kept (not expired), ``last`` the newest ever
    published in this history, even if expired (None: no history at all); ``since_kept``
    says whether ``since`` itself is a kept message; ``entries`` are ``(Position,
    message)`` after ``since`` (or from the oldest kept, for BEGINNING and markers)."""
    now_ms: int
    first: Position | None
    last: Position | None
    since_kept: bool
    entries: list


def recoverable(since, snapshot, policy):
    """Can every message after ``since`` still be delivered from ``snapshot``?"""
    first, last = snapshot.first, snapshot.last
    if since == (0, 0):                      # BEGINNING: whatever is kept
        return True
    if since.n == 0:                         # nothing was kept at since.ms
        if last is None:
            ttl = policy.ttl_ms
            return ttl is None or snapshot.now_ms - since.ms < ttl   # none expired since
        # The history began after since.ms and lost nothing from its beginning.
        return first is not None and first.n == first.ms * 1000 and first.ms >= since.ms
    if last is None or since.n > last.n:
        return False
    if since.n == last.n:
        return since == last
    if first is None or since.n < first.n - 1:
        return False
    if since.n == first.n - 1:               # right before the oldest kept
        return since.ms <= first.ms
    return snapshot.since_kept


def _from_oldest(since):
    return since.n == 0


# -- in this process -----------------------------------------------------------------------

class _Kept:
    __slots__ = ('entries', 'last', 'ttl_ms')

    def __init__(self, policy):
        self.entries = deque(maxlen=policy.size)   # (Position, message), oldest first
        self.last = None
        self.ttl_ms = policy.ttl_ms


class MemoryHistory:
    """Histories kept in this process (the memory broker), by the same rules as Redis:
    a history untouched for ``ttl`` vanishes, ordinals and all."""

    SWEEP_INTERVAL = 60_000   # ms between sweeps of vanished histories

    def __init__(self):
        self._channels = {}
        self._swept = now_ms()

    def append(self, channel, message, policy):
        """Keep ``message``; its ``Position``."""
        now = now_ms()
        if now - self._swept >= self.SWEEP_INTERVAL:
            self._sweep(now)
        kept = self._current(channel, policy, now)
        if kept is None:
            kept = self._channels[channel] = _Kept(policy)
            position = Position(now, now * 1000)
        else:
            position = Position(max(now, kept.last.ms), kept.last.n + 1)
        kept.entries.append((position, message))
        kept.last = position
        return position

    def read(self, channel, since, limit, policy):
        """A ``Snapshot`` with at most ``limit`` entries after ``since`` (None: only the
        last position)."""
        now = now_ms()
        kept = self._current(channel, policy, now)
        if kept is None:
            return Snapshot(now, None, None, False, [])
        entries = kept.entries
        first = entries[0][0] if entries else None
        if since is None:
            return Snapshot(now, first, kept.last, False, [])
        if _from_oldest(since) or first is None:
            start = 0
        else:
            start = max(0, since.n - first.n + 1)
        since_kept = 0 < start <= len(entries) and entries[start - 1][0] == since
        return Snapshot(now, first, kept.last, since_kept,
                        list(islice(entries, start, start + limit)))

    def _current(self, channel, policy, now):
        """The channel's history with expired messages dropped; None if it vanished."""
        kept = self._channels.get(channel)
        if kept is None or policy.ttl_ms is None:
            return kept
        oldest = now - policy.ttl_ms
        if kept.last.ms < oldest:
            del self._channels[channel]
            return None
        entries = kept.entries
        if entries and entries[0][0].ms < oldest:
            # Times never go back: the expired ones are a prefix.
            for _ in range(bisect_left(entries, oldest, key=lambda entry: entry[0].ms)):
                entries.popleft()
        return kept

    def _sweep(self, now):
        """Forget the histories that vanished, also of channels nobody touches again."""
        self._swept = now
        for channel, kept in list(self._channels.items()):
            if kept.ttl_ms is not None and kept.last.ms < now - kept.ttl_ms:
                del self._channels[channel]


# -- in Redis --------------------------------------------------------------------------------

# A channel's history is the stream ``<prefix><channel>``, one field ``m`` (the message as
# pub/sub carries it) per entry; its entry IDs are the positions. Publishing is one script:
# the entry is added and trimmed and the message published with its position, atomically,
# so positions are in the order subscribers receive the messages.
_NOW_MS = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local function last_entry(key)
    local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)[1]
    return last and last[1]
end
"""

# KEYS[1]: the stream. ARGV: channel, payload, size (0: unbounded), ttl ms (0: none).
_PUBLISH = _NOW_MS + """
local key, size, ttl = KEYS[1], tonumber(ARGV[3]), tonumber(ARGV[4])
local ms, n = now, now * 1000
local last = last_entry(key)
if last then
    local dash = string.find(last, '-', 1, true)
    ms = math.max(now, tonumber(string.sub(last, 1, dash - 1)))
    n = tonumber(string.sub(last, dash + 1)) + 1
end
local id = string.format('%d-%d', ms, n)
if size > 0 then
    redis.call('XADD', key, 'MAXLEN', size, id, 'm', ARGV[2])
else
    redis.call('XADD', key, id, 'm', ARGV[2])
end
if ttl > 0 then
    redis.call('XTRIM', key, 'MINID', string.format('%d', now - ttl))
    redis.call('PEXPIRE', key, ttl)
end
redis.call('PUBLISH', ARGV[1], '\\254' .. id .. '\\n' .. ARGV[2])
return id
"""

# KEYS[1]: the stream. ARGV: since ('': none, only the last position), 1 to read from the
# oldest kept rather than after since, limit, ttl ms (0: none).
# Returns {now ms, last ID or '', oldest kept ID or '', since kept (0/1), entries}.
_READ = _NOW_MS + """
local key, since, limit, ttl = KEYS[1], ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
local oldest = '-'
if ttl > 0 then oldest = string.format('%d', now - ttl) end
local first = redis.call('XRANGE', key, oldest, '+', 'COUNT', 1)[1]
local since_kept, entries = 0, {}
if since ~= '' then
    since_kept = #redis.call('XRANGE', key, since, since)
    local start = '(' .. since
    if ARGV[2] == '1' then start = oldest end
    if limit > 0 then entries = redis.call('XRANGE', key, start, '+', 'COUNT', limit) end
end
return {now, last_entry(key) or '', first and first[1] or '', since_kept, entries}
"""

#: A pub/sub payload that carries a position starts with this byte (never in UTF-8; a
#: binary message starts with 0xFF), then the position, a newline, the message.
_POSITIONED = b'\xfe'


def _parse_id(id_):
    return Position.parse(id_.decode('ascii')) if id_ else None


class RedisHistory:
    """Histories kept in Redis streams, readable by every process; ``client`` is a
    redis-py client (normal connections, not the pub/sub one)."""

    prefix = 'superserver:history:'

    def __init__(self, client):
        self._publish = client.register_script(_PUBLISH)
        self._read = client.register_script(_READ)

    def publish(self, channel, payload, policy):
        """Keep ``payload`` (bytes) and publish it with its position; the position."""
        position = self._publish(keys=[self.prefix + channel], args=[
            channel, payload, policy.size or 0, policy.ttl_ms or 0])
        return position.decode('ascii')

    def read(self, channel, since, limit, policy):
        """A ``Snapshot`` with at most ``limit`` entries (raw payloads) after ``since``
        (None: only the last position), read atomically."""
        now, last, first, since_kept, entries = self._read(
            keys=[self.prefix + channel],
            args=['' if since is None else str(since),
                  1 if since is not None and _from_oldest(since) else 0,
                  limit, policy.ttl_ms or 0])
        return Snapshot(now, _parse_id(first), _parse_id(last), bool(since_kept),
                        [(_parse_id(id_), fields[1]) for id_, fields in entries])   # m, payload

    @staticmethod
    def unwrap(data):
        """``(position, payload)`` of a pub/sub payload; position None if it has none."""
        if data[:1] != _POSITIONED:
            return None, data
        end = data.index(b'\n')
        return data[1:end].decode('ascii'), data[end + 1:]
