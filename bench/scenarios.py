"""The scenarios S1 to S5: what each asks of a server, what it reports, which figure the
ratio columns compare.

Every ``measure`` gets a freshly started server (``ServerProcess``) and the ``Load``,
and returns that run's figures; the harness takes their medians.
"""
import urllib.request
from dataclasses import asdict, dataclass
from typing import Callable

from . import servers, wrk
from .processes import run_client


@dataclass(frozen=True)
class Load:
    """How much each scenario asks for: the real figures, or the smoke test's few."""
    duration: int = 10            # seconds of S1, S2 and S5 (wrk takes whole seconds)
    echo_connections: int = 50
    echo_size: int = 32
    large_connections: int = 8
    large_size: int = 64 * 1024
    idle_connections: int = 10_000
    idle_seconds: int = 30        # connections not open by then count as failed
    idle_samples: int = 100       # idle connections asked to echo while all are open
    idle_settle: float = 1.0      # seconds the server is given before its RSS is read
    broadcast_clients: int = 1000
    broadcast_rounds: int = 100
    broadcast_seconds: int = 10   # fewer rounds for a server slower than that
    broadcast_size: int = 64
    http_connections: int = 50


FULL = Load()
SMOKE = Load(duration=1, echo_connections=5, large_connections=2, idle_connections=200,
             idle_seconds=10, idle_samples=10, idle_settle=0.1, broadcast_clients=50,
             broadcast_rounds=10, broadcast_seconds=5, http_connections=10)


@dataclass(frozen=True)
class Column:
    label: str
    key: str           # in the figures ``measure`` returns
    format: str = '{:,.0f}'


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str         # formatted with the Load's fields
    servers: tuple
    measure: Callable
    columns: tuple
    headline: str      # the figure the ratio columns divide
    higher_is_better: bool = True

    def describe(self, load):
        return '%s %s' % (self.key, self.title.format(**asdict(load)))


def echo_loops(server, process, load, connections, size, binary):
    return run_client({'scenario': 'echo', 'url': process.url(server.paths['echo']),
                       'connections': connections, 'size': size, 'binary': binary,
                       'duration': load.duration}, load.duration)


def echo(server, process, load):
    return echo_loops(server, process, load, load.echo_connections, load.echo_size, False)


def large(server, process, load):
    return echo_loops(server, process, load, load.large_connections, load.large_size, True)


def idle(server, process, load):
    return run_client({'scenario': 'idle', 'url': process.url(server.paths['echo']),
                       'connections': load.idle_connections, 'max_seconds': load.idle_seconds,
                       'samples': load.idle_samples, 'settle': load.idle_settle,
                       'server_pid': process.pid}, load.idle_seconds)


def broadcast(server, process, load):
    return run_client({'scenario': 'broadcast', 'url': process.url(server.paths['broadcast']),
                       'clients': load.broadcast_clients, 'rounds': load.broadcast_rounds,
                       'size': load.broadcast_size, 'max_seconds': load.broadcast_seconds},
                      load.broadcast_seconds)


#: Seconds the first request may take: gunicorn listens before its worker has loaded Django.
FIRST_REQUEST_TIMEOUT = 60


def http(server, process, load):
    url = process.url(server.paths['http'], scheme='http')
    with urllib.request.urlopen(url, timeout=FIRST_REQUEST_TIMEOUT) as response:
        response.read()   # Django loaded and its first-request paths run, out of the timing
    cpu_before = process.cpu_seconds()
    figures = wrk.run(url, load.http_connections, load.duration)
    # The server's CPU per request: a saturated server's req/s follows the CPU the other
    # processes of a noisy machine leave it; this does not.
    figures['cpu_us_per_request'] = ((process.cpu_seconds() - cpu_before) * 1e6
                                     / max(1, figures['requests']))
    return figures


WEBSOCKET_PEERS = (servers.GEVENT_WEBSOCKET, servers.WEBSOCKETS, servers.CHANNELS)

ALL = (
    Scenario('S1', 'echo: {echo_connections} connections, {echo_size}-byte text, each sends '
                   'and waits for its echo, for {duration} s',
             (servers.SUPERSERVER, *WEBSOCKET_PEERS, servers.CEILING), echo,
             (Column('msgs/s', 'messages_per_s'), Column('p50 ms', 'p50_ms', '{:.2f}'),
              Column('p99 ms', 'p99_ms', '{:.2f}')),
             'messages_per_s'),
    Scenario('S2', 'large messages: {large_connections} connections, {large_size:,}-byte '
                   'binary echo, for {duration} s (MB/s: payload bytes echoed back, '
                   '1 MB = 10^6 bytes)',
             (servers.SUPERSERVER, *WEBSOCKET_PEERS, servers.CEILING), large,
             (Column('MB/s', 'mb_per_s', '{:,.1f}'), Column('msgs/s', 'messages_per_s'),
              Column('p50 ms', 'p50_ms', '{:.2f}'), Column('p99 ms', 'p99_ms', '{:.2f}')),
             'mb_per_s'),
    Scenario('S3', 'idle: {idle_connections:,} websockets open at once in one server process '
                   '(those not open after {idle_seconds} s count as failed), {idle_samples} of '
                   'them asked to echo',
             (servers.SUPERSERVER, *WEBSOCKET_PEERS), idle,
             (Column('KiB/conn', 'kib_per_connection', '{:.1f}'),
              Column('open s', 'open_s', '{:.1f}'),
              Column('RSS before MiB', 'rss_before_mib', '{:.1f}'),
              Column('RSS after MiB', 'rss_after_mib', '{:.1f}'),
              Column('opened', 'opened'), Column('failed', 'failed'),
              Column('echoed', 'sample_echoed')),
             'kib_per_connection', higher_is_better=False),
    Scenario('S4', 'broadcast: {broadcast_clients:,} clients, {broadcast_rounds} rounds (as '
                   'many as fit in {broadcast_seconds} s) of one {broadcast_size}-byte message '
                   'to all',
             (servers.SUPERSERVER, servers.SUPERSERVER_PUBSUB, *WEBSOCKET_PEERS,
              servers.CEILING), broadcast,
             (Column('deliveries/s', 'deliveries_per_s'),
              Column('ms/round', 'round_ms', '{:.1f}'), Column('rounds', 'rounds')),
             'deliveries_per_s'),
    Scenario('S5', 'Django HTTP hello: wrk -t1 -c{http_connections} for {duration} s',
             (servers.SUPERSERVER, servers.GUNICORN, servers.PYWSGI), http,
             (Column('req/s', 'requests_per_s'), Column('p50 ms', 'p50_ms', '{:.2f}'),
              Column('p99 ms', 'p99_ms', '{:.2f}'), Column('max ms', 'max_ms', '{:.1f}'),
              Column('errors', 'errors'), Column('server CPU us/req', 'cpu_us_per_request')),
             'requests_per_s'),
)
