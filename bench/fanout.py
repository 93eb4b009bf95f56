"""python -m bench.fanout: what superserver's fan-out costs across two processes on one
Redis, where no peer offers the same (so figures, not ratios).

- R1, recovery: 1,000 clients leave, 1,000 messages are published on a channel with
  history, and all come back at once asking for what they missed.
- P1, presence: 10,000 websockets in the presence of one channel, half on each process;
  then one process is killed and its members must go.

The servers share core 0, the load generator and redis-server core 1. The report is
printed and written to bench/results/fanout.md.
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .processes import CLIENT_CORE, ROOT, ServerProcess, free_port, pinned, run_client
from .servers import SUPERSERVER

RESULTS = ROOT / 'bench' / 'results'


class RedisServer:
    """redis-server on a free loopback port, pinned to the client's core, no persistence."""

    def __init__(self, directory):
        self.port = free_port()
        self.url = 'redis://127.0.0.1:%d/0' % self.port
        self.process = subprocess.Popen(
            [*pinned(CLIENT_CORE), 'redis-server', '--port', str(self.port), '--bind',
             '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', str(directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while subprocess.run(['redis-cli', '-p', str(self.port), 'ping'], capture_output=True,
                             text=True).stdout.strip() != 'PONG':
            if time.monotonic() > deadline:
                raise RuntimeError('redis-server did not answer within 10 s')
            time.sleep(0.05)

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


def two_servers(redis, logs, env=None):
    env = {'BENCH_BROKER': redis.url, **(env or {})}
    return [ServerProcess(SUPERSERVER, logs / ('fanout-%d.log' % n), env) for n in (0, 1)]


def recovery(redis, logs, clients, messages):
    servers = two_servers(redis, logs)
    try:
        urls = [servers[n % 2].url('/ws/recover/') for n in range(clients)]
        return run_client({'scenario': 'recovery', 'urls': urls, 'messages': messages,
                           'publish_url': servers[0].url('/publish-history/', 'http'),
                           'pids': [server.pid for server in servers], 'max_seconds': 300})
    finally:
        for server in servers:
            server.stop()


def presence(redis, logs, connections, timeout):
    servers = two_servers(redis, logs, {'BENCH_PRESENCE_TIMEOUT': str(timeout)})
    try:
        return run_client({'scenario': 'presence',
                           'urls': [server.url('/ws/present/') for server in servers],
                           'per_process': connections // 2,
                           'presence_urls': [s.url('/presence/', 'http') for s in servers],
                           'pids': [server.pid for server in servers], 'redis_url': redis.url,
                           'idle_seconds': 10, 'max_seconds': 120 + timeout})
    finally:
        for server in servers:
            server.stop()


def report(r1, p1, arguments):
    lines = ['# Fan-out across two processes on one Redis', '',
             '`python -m bench.fanout %s`: both servers on core 0, the clients and '
             'redis-server on core 1.' % ' '.join(sys.argv[1:]), '',
             '## R1: %s clients recover %s missed messages each, all at once'
             % (format(r1['clients'], ','), format(r1['messages'], ',')), '',
             '| time until all have all | deliveries/s | CPU of both servers |',
             '|---:|---:|---:|',
             '| %.2f s | %s | %.1f s |' % (r1['seconds'], format(round(r1['deliveries_per_s']),
                                                                ','), r1['server_cpu_s']), '',
             '## P1: %s websockets in one channel\'s presence, half on each process'
             % format(p1['connections'], ','), '',
             '| | |', '|---|---:|',
             '| all open | %.1f s |' % p1['open_s'],
             '| both processes see them all | %.0f ms later |' % (p1['seen_s'] * 1000),
             '| `presence(channel)` of %s members (median of 20) | %.1f ms |'
             % (format(p1['connections'], ','), p1['query_ms']),
             '| Redis memory per connection | %d bytes |' % p1['redis_bytes_per_connection'],
             '| CPU of each idle server (heartbeats) | %s |'
             % ' / '.join('%.2f %%' % cpu for cpu in p1['idle_cpu_percent']),
             '| second process killed (-9): its members gone after | %.1f s (timeout %g s) |'
             % (p1['killed_gone_s'], arguments.presence_timeout), '']
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='python -m bench.fanout',
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--clients', type=int, default=1000, help='R1 clients (default 1000)')
    parser.add_argument('--messages', type=int, default=1000, help='R1 messages (default 1000)')
    parser.add_argument('--connections', type=int, default=10000,
                        help='P1 websockets (default 10000)')
    parser.add_argument('--presence-timeout', type=float, default=15,
                        help='SUPERSERVER_PRESENCE_TIMEOUT of the P1 servers (default 15)')
    parser.add_argument('--output', type=Path, default=RESULTS / 'fanout.md')
    arguments = parser.parse_args(argv)
    if not shutil.which('redis-server'):
        parser.error('redis-server is not installed (make test installs it)')
    logs = RESULTS / 'logs'
    logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as directory:
        redis = RedisServer(directory)
        try:
            r1 = recovery(redis, logs, arguments.clients, arguments.messages)
            print('R1', json.dumps(r1), file=sys.stderr)
            p1 = presence(redis, logs, arguments.connections, arguments.presence_timeout)
            print('P1', json.dumps(p1), file=sys.stderr)
        finally:
            redis.stop()
    text = report(r1, p1, arguments)
    arguments.output.write_text(text)
    print(text)


if __name__ == '__main__':
    main()
