"""Fan-out across processes: two superserver processes, one real redis-server."""
import asyncio
import subprocess
import time

import redis
import requests
import websocket
from websockets.asyncio.client import connect

from .server_process import PYTHON, ROOT, wait_until
from .services import redis_server, requires_redis, servers  # noqa: F401 (fixtures)

pytestmark = requires_redis


def join(server, room):
    ws = websocket.create_connection(server.ws_url + '/ws/room/%s/' % room, timeout=20)
    assert ws.recv() == 'subscribed'
    return ws


def test_published_on_a_received_on_b_in_order(servers):
    a, b = servers
    listeners = [join(b, 'order') for _ in range(3)]
    speaker = join(a, 'order')
    for i in range(50):
        speaker.send('message %d' % i)
    for ws in [speaker, *listeners]:
        assert [ws.recv() for _ in range(50)] == ['message %d' % i for i in range(50)]
        ws.close()


def test_1000_subscribers_across_both_processes_get_all_100_messages(servers):
    a, b = servers
    subscribers, messages = 1000, 100

    async def subscriber(url, ready, results):
        async with connect(url, max_queue=None, open_timeout=60) as ws:
            assert await ws.recv() == 'subscribed'
            ready.release()
            results.append([await asyncio.wait_for(ws.recv(), 60) for _ in range(messages)])

    def publish_all():
        session = requests.Session()
        for i in range(messages):
            response = session.post(a.url + '/publish/fan/', data=b'fan-out %d' % i, timeout=10)
            assert response.status_code == 204, response.text

    async def run():
        ready, results = asyncio.Semaphore(0), []
        urls = [(a if n % 2 else b).ws_url + '/ws/room/fan/' for n in range(subscribers)]
        tasks = [asyncio.create_task(subscriber(url, ready, results)) for url in urls]
        for _ in range(subscribers):
            await asyncio.wait_for(ready.acquire(), 60)
        started = time.monotonic()
        await asyncio.get_running_loop().run_in_executor(None, publish_all)
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
        return results, time.monotonic() - started

    results, elapsed = asyncio.run(run())
    expected = ['fan-out %d' % i for i in range(messages)]
    assert len(results) == subscribers
    assert all(received == expected for received in results)   # none lost, none doubled
    print('\n%d subscribers x %d messages = %d deliveries in %.2f s (%.0f/s)'
          % (subscribers, messages, subscribers * messages, elapsed,
             subscribers * messages / elapsed))


def test_redis_restart_servers_keep_serving_and_resubscribe(servers, redis_server):
    a, b = servers
    clients = [join(a, 'restart'), join(b, 'restart')]
    marks = [len(server.lines) for server in servers]
    redis_server.stop()
    for server in servers:   # HTTP goes on without Redis...
        assert requests.get(server.url + '/', timeout=10).status_code == 200
    # ...publishing says clearly that it cannot
    response = requests.post(a.url + '/publish/restart/', data=b'lost', timeout=30)
    assert response.status_code == 503
    assert 'is unreachable' in response.text
    for server, mark in zip(servers, marks):
        server.wait_for('Redis at redis://127.0.0.1:%d/0 went away' % redis_server.port,
                        start=mark)
    redis_server.start()
    for server, mark in zip(servers, marks):
        server.wait_for(r'Redis at \S+ is back; subscribing again to \d+ channel', start=mark)
    # "Is back" is logged before the subscriptions are made again: probe until what each
    # server publishes reaches the client of the other.
    for ws, publisher in zip(clients, (b, a)):
        assert wait_until(lambda: probed(publisher, ws), timeout=20), 'no probe came'
    for i in range(10):
        response = requests.post(b.url + '/publish/restart/', data=b'after %d' % i, timeout=10)
        assert response.status_code == 204, response.text
    for ws in clients:
        received = []
        while len(received) < 10:
            message = ws.recv()
            if message.startswith('after'):
                received.append(message)
        assert received == ['after %d' % i for i in range(10)]
        ws.close()


def probed(server, ws):
    """Whether a probe published through ``server`` came to ``ws`` within 0.5 s."""
    if requests.post(server.url + '/publish/restart/', data=b'probe',
                     timeout=10).status_code != 204:
        return False
    ws.settimeout(0.5)
    try:
        return ws.recv() == 'probe'
    except websocket.WebSocketTimeoutException:
        return False
    finally:
        ws.settimeout(20)


def test_publish_from_a_management_command(servers, project_env, redis_server):
    listeners = [join(server, 'command') for server in servers]
    result = subprocess.run(
        [PYTHON, 'manage.py', 'publish', 'group:command', 'from the command line'],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**project_env, 'PATH': '/usr/bin:/bin',
             'SUPERSERVER_TEST_BROKER': redis_server.url})
    assert result.returncode == 0, result.stderr
    for ws in listeners:
        assert ws.recv() == 'from the command line'
        ws.close()


def test_publish_command_refuses_the_memory_broker(project_env):
    result = subprocess.run(
        [PYTHON, 'manage.py', 'publish', 'group:x', 'nowhere'], cwd=ROOT, capture_output=True,
        text=True, timeout=60, env={**project_env, 'PATH': '/usr/bin:/bin'})
    assert result.returncode == 1
    assert 'reaches this process only' in result.stderr


def test_one_redis_connection_per_process_for_all_subscriptions(servers, redis_server):
    sockets = [join(server, 'room-%d' % n) for n in range(20) for server in servers]
    client = redis.Redis.from_url(redis_server.url)
    subscribers = [c for c in client.client_list() if int(c['sub']) > 0]
    assert len(subscribers) == 2   # one connection per server process, for 40 sockets
    rooms = ['group:room-%d' % n for n in range(20)]
    assert [count for _, count in client.pubsub_numsub(*rooms)] == [2] * 20   # one each
    for ws in sockets:
        ws.close()


def test_any_redis_client_can_publish_text_and_binary_comes_through(servers, redis_server):
    """On Redis a text message is its UTF-8 bytes as they are: a plain PUBLISH (redis-cli,
    an old django-websocket-redis publisher) reaches the sockets as text. Binary messages
    published through superserver stay binary, even when they happen to be valid UTF-8."""
    a, b = servers
    ws = join(b, 'raw')
    client = redis.Redis.from_url(redis_server.url)
    assert client.publish('group:raw', 'plain «text»'.encode('utf-8')) == 1
    assert ws.recv() == 'plain «text»'
    client.publish('group:raw', b'\x80 not UTF-8')
    assert ws.recv() == b'\x80 not UTF-8'
    response = requests.post(a.url + '/publish/raw/?binary', data=b'looks like text', timeout=10)
    assert response.status_code == 204, response.text
    opcode, data = ws.recv_data()
    assert (opcode, data) == (websocket.ABNF.OPCODE_BINARY, b'looks like text')
    ws.close()
