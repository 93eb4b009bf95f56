"""Server-Sent Events through manage.py superserver, read by a real HTTP client."""
import threading

import requests


def read_events(response, count):
    """Parse ``count`` events (and the comments before them) off an event stream."""
    events, comments, event = [], [], {}
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith(':'):
            comments.append(line)
        elif line:
            field, _, value = line.partition(': ')
            # Several data lines make one value, joined by newlines (the SSE format).
            event[field] = event[field] + '\n' + value if field == 'data' and field in event else value
        elif event:
            events.append(event)
            event = {}
            if len(events) == count:
                break
    return events, comments


def open_stream(server, path, **headers):
    response = requests.get(server.url + path, stream=True, timeout=10, headers=headers)
    assert response.status_code == 200
    assert response.headers['Content-Type'] == 'text/event-stream; charset=utf-8'
    assert response.headers['Cache-Control'] == 'no-cache'
    return response


def test_events_arrive_with_ids_and_retry(django_server):
    with open_stream(django_server, '/sse/ticks/?count=5&interval=0.01') as response:
        events, comments = read_events(response, 6)
    assert events[0] == {'retry': '500'}
    assert events[1:] == [{'id': str(n), 'data': 'tick %d' % n} for n in range(1, 6)]
    assert comments[0] == ': stream open'


def test_reconnecting_with_last_event_id_resumes(django_server):
    with open_stream(django_server, '/sse/ticks/?interval=0.01') as response:
        seen, _ = read_events(response, 4)   # retry, then ticks 1-3; then the client drops
    last = seen[-1]['id']
    with open_stream(django_server, '/sse/ticks/?interval=0.01',
                     **{'Last-Event-ID': last}) as response:
        resumed, _ = read_events(response, 3)
    assert [event['id'] for event in resumed[1:]] == ['4', '5']


def test_heartbeat_comments_while_quiet(django_server):
    # 1 s between the ticks: 9 heartbeats 0.1 s apart; 3 are asked for, room for late ones.
    with open_stream(django_server, '/sse/ticks/?count=2&interval=1&heartbeat=0.1') as response:
        events, comments = read_events(response, 3)
    assert [event.get('id') for event in events] == [None, '1', '2']
    assert comments.count(': keep-alive') >= 3


def test_stream_fed_by_a_subscription(django_server):
    received = []
    with open_stream(django_server, '/sse/group/news/?heartbeat=0.2') as response:
        lines = response.iter_lines(decode_unicode=True)
        assert next(lines) == ': stream open'   # subscribed before the headers went out
        reader = threading.Thread(target=lambda: received.extend(read_events(response, 2)[0]))
        reader.start()
        for text in ('first news', 'second\nnews'):
            assert requests.post(django_server.url + '/publish/news/', data=text.encode(),
                                 timeout=10).status_code == 204
        reader.join(10)
    assert received == [{'data': 'first news'}, {'data': 'second\nnews'}]
