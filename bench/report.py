"""The report: medians of the runs, ratios against each peer, one markdown table per
scenario, and the machine and package versions the figures belong to."""
import importlib.util
import os
import platform
import statistics
from dataclasses import dataclass, field
from importlib import metadata

from . import wrk
from .processes import CLIENT_CORE, SERVER_CORE

PACKAGES = ('superserver', 'Django', 'gevent', 'ws4py', 'gevent-websocket', 'websockets',
            'channels', 'uvicorn', 'uvloop', 'httptools', 'gunicorn', 'picows')


@dataclass
class Outcome:
    """What the runs of one server in one scenario gave: figures, or why not."""
    figures: list = field(default_factory=list)   # one dict per run that completed
    errors: list = field(default_factory=list)    # (run, message) of those that did not

    def median(self, key):
        return statistics.median(figures[key] for figures in self.figures)


def cell(text):
    return str(text).replace('|', '\\|').replace('\n', ' ')


def table(scenario, outcomes, runs):
    """The markdown table of ``scenario``: a row per server, medians, ratio columns."""
    rows = [(server, outcomes[scenario.key, server.key]) for server in scenario.servers
            if (scenario.key, server.key) in outcomes]
    peers = [(server, outcome) for server, outcome in rows if server.peer and outcome.figures]
    header = ['server', *(column.label for column in scenario.columns),
              *('vs %s' % server.name for server, _ in peers)]
    lines = ['| %s |' % ' | '.join(header),
             '|---|' + '---:|' * (len(header) - 1)]
    notes = []
    for server, outcome in rows:
        name = server.name
        if len(outcome.figures) < runs:
            name += ' (%d of %d runs)' % (len(outcome.figures), runs)
        notes += ['- %s, run %d: %s' % (server.name, run, cell(error))
                  for run, error in outcome.errors]
        notes += ['- %s: %s' % (server.name, cell(figures['note']))
                  for figures in outcome.figures if figures.get('note')]
        if not outcome.figures:
            cells = ['failed'] + [''] * (len(header) - 2)
        else:
            headline = outcome.median(scenario.headline)
            cells = [*(column.format.format(outcome.median(column.key))
                       for column in scenario.columns),
                     *('%.2f' % (headline / peer.median(scenario.headline)) for _, peer in peers)]
        lines.append('| %s |' % ' | '.join([cell(name), *cells]))
    direction = 'higher' if scenario.higher_is_better else 'lower'
    label = next(column.label for column in scenario.columns if column.key == scenario.headline)
    return '\n'.join([*lines, '', 'Ratios: %s of the row / %s of the column\'s peer (%s is '
                                  'better).' % (label, label, direction), *notes])


def version(distribution):
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return 'not installed'


def uvicorn_defaults():
    """What uvicorn's "auto" loop, HTTP and websocket implementations are here."""
    from uvicorn.config import HTTP_PROTOCOLS, WS_PROTOCOLS
    from uvicorn.protocols.http.auto import AutoHTTPProtocol
    from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol

    def named(implementations, chosen):
        return next(name for name, path in implementations.items()
                    if name != 'auto' and path and path.endswith(':' + chosen.__name__))

    loop = 'uvloop' if importlib.util.find_spec('uvloop') else 'asyncio'   # as uvicorn.loops.auto
    return 'loop %s, http %s, ws %s' % (loop, named(HTTP_PROTOCOLS, AutoHTTPProtocol),
                                        named(WS_PROTOCOLS, AutoWebSocketsProtocol))


def cpu_model():
    with open('/proc/cpuinfo') as cpuinfo:
        return next((line.split(':', 1)[1].strip() for line in cpuinfo
                     if line.startswith('model name')), platform.processor())


def machine(load_average):
    """Lines saying where and with what the figures were measured."""
    return [
        '- CPU: %s, %d cores; servers pinned to core %d, the load generator to core %d'
        % (cpu_model(), os.cpu_count(), SERVER_CORE, CLIENT_CORE),
        '- %s, Python %s' % (platform.platform(), platform.python_version()),
        '- %s, wrk %s' % (', '.join('%s %s' % (name, version(name)) for name in PACKAGES),
                          wrk.version()),
        '- uvicorn defaults: %s' % uvicorn_defaults(),
        '- load average when the run started: %.2f %.2f %.2f (other processes share the '
        'cores)' % load_average,
    ]


def render(scenarios, load, outcomes, runs, command, started, seconds, load_average):
    """The whole report, in markdown."""
    sections = ['# superserver benchmarks', '',
                '`%s`, %s, %d run(s) per server, medians; took %d min %02d s.'
                % (command, started, runs, seconds // 60, seconds % 60), '',
                *machine(load_average)]
    for scenario in scenarios:
        sections += ['', '## %s' % scenario.describe(load), '', table(scenario, outcomes, runs)]
    return '\n'.join(sections) + '\n'
