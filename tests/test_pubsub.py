"""The in-process broker and the SSE encoding, without a server."""
import json

import pytest
from django.test import RequestFactory

from extensions import sse
from extensions.pubsub import (
    Delivery,
    MemoryBroker,
    SubscriberTooSlow,
    group_channel,
    session_channel,
    user_channel,
)


def test_subscribers_get_what_is_published_in_order():
    broker = MemoryBroker()
    first, second = broker.subscribe('a'), broker.subscribe('a', 'b')
    for message in ('one', b'\x00two', {'three': 3}):
        broker.publish('a', message)
    broker.publish('b', 'only for the second')
    broker.publish('c', 'for nobody')
    assert [first.get(timeout=1) for _ in range(3)] == [
        ('a', 'one'), ('a', b'\x00two'), ('a', '{"three": 3}')]
    assert [second.get(timeout=1) for _ in range(4)][-1] == ('b', 'only for the second')
    with pytest.raises(TimeoutError):
        first.get(timeout=0.01)


def test_closing_unsubscribes_and_ends_iteration():
    broker = MemoryBroker()
    subscription = broker.subscribe('a')
    broker.publish('a', 'before')
    subscription.close()
    broker.publish('a', 'after')
    assert list(subscription) == [('a', 'before')]
    assert broker._local == {}


def test_a_subscriber_too_slow_is_told_not_thinned():
    broker = MemoryBroker(max_pending=3)
    subscription = broker.subscribe('a')
    for i in range(4):
        broker.publish('a', str(i))
    with pytest.raises(SubscriberTooSlow, match='fell 3 messages behind on a'):
        subscription.get(timeout=1)
    broker.publish('a', 'after the end')
    assert subscription.get(timeout=1) is None   # ended for good: no messages after a gap
    assert broker._local == {}


def test_channel_names():
    class User:
        pk = 42

    request = RequestFactory().get('/')
    request.session = type('Session', (), {'session_key': 'abc'})()
    assert group_channel('lobby') == 'group:lobby'
    assert user_channel(User()) == user_channel(42) == 'user:42'
    assert session_channel(request) == session_channel('abc') == 'session:abc'


@pytest.mark.parametrize('event, encoded', [
    (sse.Event('hello'), b'data: hello\n\n'),
    (sse.Event('two\nlines', event='news', id=7, retry=3000),
     b'event: news\nid: 7\nretry: 3000\ndata: two\ndata: lines\n\n'),
])
def test_event_encoding(event, encoded):
    assert event.encode() == encoded


def test_event_id_cannot_break_the_stream():
    with pytest.raises(ValueError):
        sse.Event('x', id='1\n\ndata: injected').encode()


def test_last_event_id():
    factory = RequestFactory()
    assert sse.last_event_id(factory.get('/', HTTP_LAST_EVENT_ID='41')) == '41'
    assert sse.last_event_id(factory.get('/')) is None


def test_envelopes_forward_sends_with_positions():
    assert json.loads(Delivery('group:a', 'hi', '5-6').envelope()) == {
        'channel': 'group:a', 'position': '5-6', 'data': 'hi'}
    assert json.loads(Delivery('group:a', b'\xff\x00').envelope()) == {
        'channel': 'group:a', 'position': None, 'binary': '/wA='}
    assert json.loads(Delivery.lost('group:a').envelope()) == {'channel': 'group:a',
                                                                'reset': True}


@pytest.mark.parametrize('delivery, encoded', [
    (Delivery('news', 'kept', '5-6'), b'id: 5-6\ndata: kept\n\n'),
    (Delivery('news', 'live only'), b'data: live only\n\n'),
    (Delivery.lost('news'), b'event: reset\ndata: news\n\n'),
])
def test_deliveries_as_events(delivery, encoded):
    """The position is the event id, so Last-Event-ID resumes; a reset is named."""
    assert sse._as_event(delivery).encode() == encoded
