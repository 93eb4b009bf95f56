"""Presence: who is connected to a channel right now, in every process, and when they come and go.

    from extensions import presence
    from extensions.pubsub import forward, group_channel

    def room(request, name):
        ws = request.environ['wsgi.websocket']
        channel = group_channel(name)
        with forward(ws, channel, presence.presence_channel(channel)), \\
                presence.join(channel, presence.member_of(request)):
            for text in ws: ...

    presence.presence('group:lobby')   # {'alice': 2, 'session:4f1c...': 1}

A member is a string: a username, or ``'session:<key>'`` for anonymous visitors
(``member_of``). Each open ``join`` block counts one connection; a member's second tab
is a second connection, not a second member. On ``presence_channel(channel)`` JSON text
``{"event": "join" | "leave", "channel": ..., "member": ..., "connections": n}`` is
published when a member's connections across all processes go from 0 to some, and from
some to 0.

With the memory broker this is the process's own bookkeeping. With Redis, every process
keeps its own counts in Redis beside the channel totals and beats every third of
``SUPERSERVER_PRESENCE_TIMEOUT`` seconds (default 15); any process subtracts the counts of
a process silent for longer than its timeout, so the members of a killed process leave
within about 1.3 timeouts (a third more for the next beat of another process). Joins and
leaves are sent to Redis by one greenlet per process, in batches (``join`` waits until its
own is in, a second at most); while Redis is unreachable they are kept here and sent when
it is back. A Redis that restarted, empty or from a snapshot older than what happened
since, is put right by every live process at its next beat. The keys are made inside Lua
scripts, so this needs one Redis server, not a cluster. ``presence(channel)`` reads one
hash: O(members), about 40 ms for 10,000 with redis-py's own reply parser.

This module is not a list of sockets: it counts what views say, for as long as they say it.
"""
import atexit
import json
import logging
import os
import time
import uuid
from contextlib import contextmanager

import gevent
from gevent.event import Event

from .exceptions import WebSocketError
from .pubsub import MemoryBroker, RedisBroker, get_broker

__all__ = ['join', 'presence', 'presence_channel', 'member_of', 'get_presence',
           'PresenceError', 'MemoryPresence', 'RedisPresence', 'RedisPresenceStore']

logger = logging.getLogger('superserver.presence')

DEFAULT_TIMEOUT = 15
PRESENCE_CHANNEL_PREFIX = 'presence:'


class PresenceError(WebSocketError):
    """Presence cannot be read now (Redis unreachable)."""


def presence_channel(channel):
    """The channel on which ``channel``'s join and leave events are published."""
    return PRESENCE_CHANNEL_PREFIX + channel


def presence_event(event, channel, member, connections):
    """A join or leave event, as published (JSON-encoded) on ``presence_channel``."""
    return {'event': event, 'channel': channel, 'member': member, 'connections': connections}


def member_of(request):
    """The member a request counts as: the username, or ``'session:<key>'`` for anonymous
    visitors (a session is made if there is none yet; a websocket cannot set its cookie,
    so a visitor's tabs share a member once a page has given them a session)."""
    user = getattr(request, 'user', None)
    if user is not None and user.is_authenticated:
        return user.get_username()
    if not request.session.session_key:
        request.session.save()
        request.session.modified = True   # so a plain response sets the cookie
    return 'session:%s' % request.session.session_key


def _check_name(what, value):
    if not isinstance(value, str):
        raise TypeError('presence %s must be a str, not %s' % (what, type(value).__name__))
    if not value:
        raise ValueError('presence %s must not be empty' % what)


class LocalCounts:
    """This process's connections per channel and member; no I/O."""

    def __init__(self):
        self._channels = {}   # channel -> {member: connections}

    def add(self, channel, member, delta):
        """Change a count by ``delta``; the count afterwards (never below 0)."""
        members = self._channels.setdefault(channel, {})
        count = max(members.get(member, 0) + delta, 0)
        if count:
            members[member] = count
        else:
            members.pop(member, None)
            if not members:
                del self._channels[channel]
        return count

    def count(self, channel, member):
        return self._channels.get(channel, {}).get(member, 0)

    def members(self, channel):
        return dict(self._channels.get(channel, {}))

    def entries(self):
        """Every (channel, member) with connections here."""
        return [(channel, member) for channel, members in self._channels.items()
                for member in members]


class MemoryPresence:
    """Presence of this process only, for the memory broker: events go through it."""

    def __init__(self, broker):
        self.broker = broker
        self._counts = LocalCounts()

    def join(self, channel, member):
        if (count := self._counts.add(channel, member, 1)) == 1:
            self._announce('join', channel, member, count)

    def leave(self, channel, member):
        if self._counts.count(channel, member) and not self._counts.add(channel, member, -1):
            self._announce('leave', channel, member, 0)

    def members(self, channel):
        return self._counts.members(channel)

    def _announce(self, event, channel, member, connections):
        self.broker.publish(presence_channel(channel),
                            presence_event(event, channel, member, connections))


# -- Redis ----------------------------------------------------------------------------------

# Keys: ``<prefix>processes``, a sorted set of process ids scored by the time they are to
# be taken for dead unless they beat again (their last beat plus their own timeout, in
# Redis time, so the hosts' clocks do not matter); ``<prefix>process:<id>``, a hash of one
# process's connections, field ``["channel","member"]`` (JSON) -> count; and
# ``<prefix>members:<channel>``, the hash of totals, member -> connections in all processes.
# The totals only ever move together with a process's own fields, so a process's counts can
# be set again, or taken away, any number of times without counting twice.
_LUA_COMMON = """
local prefix, channel_prefix, id = ARGV[1], ARGV[2], ARGV[3]
local processes = prefix .. 'processes'
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local deadline = now + tonumber(ARGV[4])

-- Add delta to a member's total in a channel; publish join or leave when it crosses 0
-- (the event of presence_event() in Python).
local function adjust(channel, member, delta)
    local totals = prefix .. 'members:' .. channel
    local total = redis.call('HINCRBY', totals, member, delta)
    local event
    if total <= 0 then
        redis.call('HDEL', totals, member)
        if total - delta > 0 then event = 'leave' end
        total = 0
    elseif total == delta then
        event = 'join'
    end
    if event then
        redis.call('PUBLISH', channel_prefix .. channel, cjson.encode(
            {event = event, channel = channel, member = member, connections = total}))
    end
end

-- Take away every connection of a process, once: the reaper that removes it does it.
local function reap(process)
    if redis.call('ZREM', processes, process) == 0 then return 0 end
    local key = prefix .. 'process:' .. process
    local fields = redis.call('HGETALL', key)
    for i = 1, #fields, 2 do
        local entry = cjson.decode(fields[i])
        adjust(entry[1], entry[2], -tonumber(fields[i + 1]))
    end
    redis.call('DEL', key)
    return 1
end
"""

# Every script's ARGV starts with the key prefix, the presence channel prefix, the process
# id and its timeout.

# ARGV[5...]: channel, member, count (this process's connections now) for each entry.
# Returns 1 if the process was not registered (new, reaped, or Redis lost its data): the
# caller then sends all its entries.
_SYNC = _LUA_COMMON + """
local key = prefix .. 'process:' .. id
local registered = redis.call('ZADD', processes, deadline, id)
for i = 5, #ARGV, 3 do
    local channel, member, count = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
    local field = cjson.encode({channel, member})
    local old = tonumber(redis.call('HGET', key, field) or 0)
    if count ~= old then
        if count == 0 then
            redis.call('HDEL', key, field)
        else
            redis.call('HSET', key, field, count)
        end
        adjust(channel, member, count - old)
    end
end
return registered
"""

# ARGV[5]: most processes to reap. Beats, then reaps the processes silent for longer than
# their timeout. Returns {1 if this process was not registered, number reaped}.
_BEAT = _LUA_COMMON + """
local registered = redis.call('ZADD', processes, deadline, id)
local silent = redis.call('ZRANGEBYSCORE', processes, '-inf', now,
                          'LIMIT', 0, tonumber(ARGV[5]))
local reaped = 0
for _, process in ipairs(silent) do
    if process ~= id then reaped = reaped + reap(process) end   -- never itself
end
return {registered, reaped}
"""

# A process leaving for good takes its connections with it.
_WITHDRAW = _LUA_COMMON + """
return reap(id)
"""


class RedisPresenceStore:
    """The Redis side of one process's presence: atomic scripts, called synchronously."""

    PREFIX = 'superserver:presence:'
    REAP_AT_ONCE = 10   # processes reaped per beat, so one script stays short

    def __init__(self, client, process_id, timeout):
        self.client = client
        self.process_id = process_id
        self.timeout = timeout
        self._sync = client.register_script(_SYNC)
        self._beat = client.register_script(_BEAT)
        self._withdraw = client.register_script(_WITHDRAW)

    def sync(self, entries):
        """Set this process's connection count of each (channel, member, count); whether
        the process had to be registered again (its other entries must be sent too)."""
        args = self._args()
        for channel, member, count in entries:
            args += [channel, member, count]
        return bool(self._sync(args=args))

    def beat(self):
        """Say this process lives for ``timeout`` seconds more, and reap the processes
        silent for longer than theirs; (whether this process had to be registered again,
        how many were reaped)."""
        registered, reaped = self._beat(args=self._args(self.REAP_AT_ONCE))
        return bool(registered), reaped

    def entries(self):
        """Every (channel, member) Redis holds a count of for this process."""
        fields = self.client.hkeys(self.PREFIX + 'process:' + self.process_id)
        return {tuple(json.loads(field)) for field in fields}

    def server_id(self):
        """The run id of the Redis server: another one after every restart."""
        return self.client.info('server')['run_id']

    def withdraw(self):
        """Take away every connection of this process at once."""
        self._withdraw(args=self._args())

    def _args(self, *more):
        return [self.PREFIX, PRESENCE_CHANNEL_PREFIX, self.process_id, self.timeout, *more]

    def members(self, channel):
        totals = self.client.hgetall(self.PREFIX + 'members:' + channel)
        return {member.decode('utf-8'): int(count) for member, count in totals.items()}


class RedisPresence:
    """Presence across every process on one Redis: counts kept here, sent by one greenlet.

    ``join`` and ``leave`` never raise over Redis: while it is unreachable they are kept
    (logged once) and sent when it answers again.
    """

    BATCH = 500           # entries per script
    JOIN_WAIT = 1.0       # seconds join() waits for its entry to be in Redis
    RETRY_DELAYS = (0.1, 0.2, 0.5, 1, 2)

    def __init__(self, url, timeout, log_url=None):
        import redis   # only projects that use Redis need redis-py
        from .redisclients import blocking
        # Unreachable, or refusing (out of memory, a read-only replica): kept here meanwhile.
        self._redis_errors = (redis.RedisError, OSError)
        self.url = log_url or url
        self.timeout = timeout
        self.process_id = uuid.uuid4().hex
        client = blocking(redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5))
        self.store = RedisPresenceStore(client, self.process_id, timeout)
        self._counts = LocalCounts()
        self._dirty = set()        # (channel, member) whose count Redis may not have
        self._wake = Event()
        self._flushed = Event()    # set when the next flush is done
        self._down = False
        self._greenlet = None
        self._pid = None
        self._server = None        # the run id of the Redis server it beat on last

    def join(self, channel, member):
        self._counts.add(channel, member, 1)
        flushed = self._changed(channel, member)
        if not self._down:
            flushed.wait(self.JOIN_WAIT)

    def leave(self, channel, member):
        if self._counts.count(channel, member):
            self._counts.add(channel, member, -1)
            self._changed(channel, member)

    def members(self, channel):
        self._start()   # a process that only reads presence reaps too
        try:
            return self.store.members(channel)
        except self._redis_errors as error:
            raise PresenceError('presence of %r is unknown: Redis at %s is unreachable (%s)'
                                % (channel, self.url, error)) from None

    def withdraw(self):
        """At exit: this process's connections leave now rather than after the timeout
        (not in a child forked from it: they are its parent's)."""
        if self._greenlet is None or os.getpid() != self._pid:
            return
        self._greenlet.kill()
        try:
            self.store.withdraw()
        except self._redis_errors:
            pass   # they leave when another process reaps them

    def _changed(self, channel, member):
        self._dirty.add((channel, member))
        self._start()
        self._wake.set()
        return self._flushed

    def _start(self):
        if self._greenlet is None:
            self._pid = os.getpid()
            self._greenlet = gevent.spawn(self._run)
            atexit.register(self.withdraw)

    def _run(self):
        """Beat every third of the timeout; send what changed as soon as it changed."""
        failures, next_beat = 0, 0
        while True:
            self._wake.wait(max(0, next_beat - time.monotonic()))
            self._wake.clear()
            try:
                if time.monotonic() >= next_beat:
                    self._beat()
                    next_beat = time.monotonic() + self.timeout / 3
                self._flush()
            except Exception as error:
                self._failed(error)
                next_beat = 0         # beat first when it answers: it may have restarted
                gevent.sleep(self.RETRY_DELAYS[min(failures, len(self.RETRY_DELAYS) - 1)])
                failures += 1
                continue
            if self._down:
                self._down = False
                logger.warning('Redis at %s is back; presence of this process sent again',
                               self.url)
            failures = 0

    def _failed(self, error):
        if not isinstance(error, self._redis_errors):
            logger.exception('Presence: unexpected error; presence is kept here and sent '
                             'again shortly')
        elif not self._down:
            self._down = True
            logger.warning('Redis at %s cannot be used (%s); presence is kept here and sent '
                           'when it is back', self.url, error)

    def _beat(self):
        """Say this process lives and reap the silent ones; after Redis restarted (empty,
        or from a snapshot older than what happened since) or lost this process, send
        everything again."""
        server = self.store.server_id()
        registered, reaped = self.store.beat()
        if reaped:
            logger.info('Presence: %d silent process(es) reaped', reaped)
        if registered or server != self._server:
            if self._server is not None:
                logger.warning('Redis at %s restarted or lost this process; its presence is '
                               'sent again', self.url)
            self._server = server
            self._reconcile()

    def _reconcile(self):
        """Mark for sending every entry this process has, and every entry Redis has for
        it: what Redis lacks is put back, what it kept that is gone here is taken away."""
        self._dirty.update(self._counts.entries())
        self._dirty.update(self.store.entries())

    def _flush(self):
        """Send the current count of every changed entry, in batches."""
        flushed, self._flushed = self._flushed, Event()
        try:
            while self._dirty:
                batch = [self._dirty.pop() for _ in range(min(self.BATCH, len(self._dirty)))]
                entries = [(channel, member, self._counts.count(channel, member))
                           for channel, member in batch]
                try:
                    registered = self.store.sync(entries)
                except Exception:
                    self._dirty.update(batch)
                    raise
                if registered:
                    self._reconcile()
        finally:
            flushed.set()


# -- the process's presence -----------------------------------------------------------------

_presence = None


def presence_timeout():
    """``SUPERSERVER_PRESENCE_TIMEOUT``: seconds of silence after which a process's
    connections are taken away."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    timeout = getattr(settings, 'SUPERSERVER_PRESENCE_TIMEOUT', DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ImproperlyConfigured('SUPERSERVER_PRESENCE_TIMEOUT must be a positive number '
                                   'of seconds, not %r' % (timeout,))
    return timeout


def get_presence():
    """The presence of this process, for the broker of ``SUPERSERVER_BROKER``."""
    global _presence
    if _presence is None:
        from django.conf import settings
        broker = get_broker()
        if isinstance(broker, MemoryBroker):
            _presence = MemoryPresence(broker)
        elif isinstance(broker, RedisBroker):
            _presence = RedisPresence(settings.SUPERSERVER_BROKER, presence_timeout(),
                                      log_url=broker.url)
        else:
            raise TypeError('presence works with MemoryBroker and RedisBroker, not %s'
                            % type(broker).__name__)
    return _presence


@contextmanager
def join(channel, member):
    """Count ``member`` as one connection in ``channel`` while the block runs."""
    _check_name('channel', channel)
    _check_name('member', member)
    backend = get_presence()
    backend.join(channel, member)
    try:
        yield
    finally:
        backend.leave(channel, member)


def presence(channel):
    """{member: connections} of ``channel`` across every process (members with none are
    not listed). Raises ``PresenceError`` if Redis cannot be asked."""
    _check_name('channel', channel)
    return get_presence().members(channel)
