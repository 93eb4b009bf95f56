"""Recoveries that happen together share their reads (extensions/recovery.py): one read
for all who wait, full pages for all, short pages only for those subscribed before the
read, within a lifetime and a bound of bytes; and over the memory broker, no gap from a
shared page."""
import gevent
import pytest

from extensions.pubsub import Delivery, MemoryBroker
from extensions.recovery import RecentPages


class Reads:
    """A ``read`` callable that counts its calls and returns ``page`` (or raises it)."""

    def __init__(self, page, wait=0):
        self.page, self.wait, self.calls = page, wait, 0

    def __call__(self):
        self.calls += 1
        if self.wait:
            gevent.sleep(self.wait)
        if isinstance(self.page, Exception):
            raise self.page
        return self.page


def page_of(count, size=1):
    return [Delivery('h:a', 'x' * size, '1-%d' % n) for n in range(1, count + 1)]


@pytest.fixture
def clock():
    now = [100.0]
    return now


@pytest.fixture
def pages(clock):
    return RecentPages(clock=lambda: clock[0])


def test_readers_waiting_together_share_one_read(pages):
    read = Reads(page_of(3), wait=0.05)
    after = pages.tick()   # all subscribed before the read starts
    readers = [gevent.spawn(pages.get, 'h:a', '1-0', 200, after, read) for _ in range(50)]
    gevent.joinall(readers, timeout=5)
    assert read.calls == 1
    assert all(reader.value is readers[0].value for reader in readers)


def test_a_full_page_is_shared_with_later_subscribers(pages):
    read = Reads(page_of(200))
    first = pages.get('h:a', '1-0', 200, pages.tick(), read)
    assert pages.get('h:a', '1-0', 200, pages.tick(), read) is first
    assert read.calls == 1


def test_a_short_page_is_not_shared_with_a_subscriber_that_came_after_its_read(pages):
    read = Reads(page_of(3))
    pages.get('h:a', '1-0', 200, pages.tick(), read)
    pages.get('h:a', '1-0', 200, pages.tick(), read)   # might have missed a newer message
    assert read.calls == 2


def test_pages_are_keyed_by_channel_position_and_size(pages):
    read = Reads(page_of(2))
    after = pages.tick()
    for key in [('h:a', '1-0', 2), ('h:b', '1-0', 2), ('h:a', '1-1', 2), ('h:a', '1-0', 3)]:
        pages.get(*key, after, read)
    assert read.calls == 4


def test_pages_are_offered_for_their_lifetime_only(pages, clock):
    read = Reads(page_of(2))
    after = pages.tick()
    pages.get('h:a', '1-0', 2, after, read)
    clock[0] += pages.lifetime * 0.9
    pages.get('h:a', '1-0', 2, after, read)
    assert read.calls == 1
    clock[0] += pages.lifetime * 0.2
    pages.get('h:a', '1-0', 2, after, read)
    assert read.calls == 2


def test_pages_over_the_byte_bound_are_read_again(pages):
    pages.max_bytes = 1000
    large, small = Reads(page_of(2, size=600)), Reads(page_of(2, size=100))
    after = pages.tick()
    for _ in range(2):
        pages.get('h:large', '1-0', 2, after, large)
        pages.get('h:small', '1-0', 2, after, small)
    assert (large.calls, small.calls) == (2, 1)
    assert pages._bytes == 200


def test_an_unreadable_page_is_not_shared_and_a_failed_read_frees_its_waiters(pages):
    unreadable = Reads(None, wait=0.05)
    after = pages.tick()
    readers = [gevent.spawn(pages.get, 'h:a', '1-0', 2, after, unreadable) for _ in range(3)]
    gevent.joinall(readers, timeout=5)
    assert unreadable.calls == 3 and [reader.value for reader in readers] == [None] * 3
    failing = Reads(RuntimeError('Redis went away'), wait=0.05)
    readers = [gevent.spawn(pages.get, 'h:b', '1-0', 2, after, failing) for _ in range(3)]
    gevent.joinall(readers, timeout=5)
    assert failing.calls == 3 and all(isinstance(r.exception, RuntimeError) for r in readers)
    assert pages._reads == {} and pages._bytes == 0


# -- over the memory broker ----------------------------------------------------------------

HISTORY = {'h:*': {'size': 1000}}


def test_a_second_recovery_reads_only_the_last_page_again():
    broker = MemoryBroker(history=HISTORY)
    broker.REPLAY_PAGE = 20
    since = broker.publish('h:a', 'before')
    for n in range(45):
        broker.publish('h:a', n)
    reads = []
    read_history = broker._read_history
    broker._read_history = lambda *args: reads.append(args[1]) or read_history(*args)
    for _ in range(2):
        with broker.subscribe('h:a', since=since) as subscription:
            assert [subscription.get(timeout=1).message for _ in range(45)] == [
                str(n) for n in range(45)]
    assert len(reads) == 3 + 1   # three pages, then the short last one again


def test_a_message_published_after_a_short_page_reaches_the_next_recovery():
    """Without the rule on short pages, the second subscriber would get the first one's
    page, ['b'], and miss 'c': published before it subscribed, after that page."""
    broker = MemoryBroker(history=HISTORY)
    since = broker.publish('h:a', 'a')
    broker.publish('h:a', 'b')
    with broker.subscribe('h:a', since=since) as first:
        assert first.get(timeout=1).message == 'b'
    broker.publish('h:a', 'c')
    with broker.subscribe('h:a', since=since) as second:
        assert [second.get(timeout=1).message for _ in range(2)] == ['b', 'c']


def test_envelopes_of_a_shared_page_are_made_once():
    delivery = Delivery('h:a', 'hi', '5-6')
    assert delivery.envelope() is delivery.envelope()
    assert delivery.at == (5, 6)
