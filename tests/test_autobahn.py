"""The Autobahn harness: the checker judges the reports of both clients right, the
runner picks wstest or kosoku as documented, and through either a broken echo fails
the run while the real server passes."""
import importlib.util
import json
import os
import subprocess

import pytest

from .server_process import PYTHON, ROOT

CHECK = ROOT / 'autobahn' / 'check.py'
RUN = ROOT / 'autobahn' / 'run.py'


def load_clients():
    """autobahn/clients.py (autobahn/ holds scripts, not a package)."""
    spec = importlib.util.spec_from_file_location('autobahn_clients',
                                                  ROOT / 'autobahn' / 'clients.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


clients = load_clients()


def write_report(directory, cases, agent='superserver', client=None):
    """An index.json and per-case reports, as wstest writes them (kosoku: the agent is
    the server's address); ``client`` as run.py records it."""
    index = {}
    for case_id, (behaviour, close) in cases.items():
        reportfile = '%s_case_%s.json' % (agent.replace('.', '_').replace(':', '_'),
                                          case_id.replace('.', '_'))
        (directory / reportfile).write_text(json.dumps({
            'description': 'case %s' % case_id, 'result': 'result of %s' % case_id,
            'resultClose': 'close of %s' % case_id}))
        index[case_id] = {'behavior': behaviour, 'behaviorClose': close,
                          'reportfile': reportfile, 'duration': 1, 'remoteCloseCode': 1000}
    (directory / 'index.json').write_text(json.dumps({agent: index}))
    if client:
        (directory / 'client.json').write_text(json.dumps(client))
    return directory / 'index.json'


def check(index, *args):
    result = subprocess.run([PYTHON, str(CHECK), str(index), *args],
                            capture_output=True, text=True, timeout=60)
    return result.returncode, result.stdout


ALL_OK = {'1.1.1': ('OK', 'OK'), '5.1': ('OK', 'OK'), '7.13.1': ('INFORMATIONAL', 'INFORMATIONAL'),
          '12.1.1': ('OK', 'OK'), '13.7.18': ('OK', 'OK')}


def test_all_ok_passes_with_a_table(tmp_path):
    code, out = check(write_report(tmp_path, ALL_OK))
    assert code == 0, out
    assert out.splitlines()[-1] == 'autobahn: 5 passed, 0 failed'
    assert out.splitlines()[0].split() == [
        'chapter', 'cases', 'OK', 'NON-STRICT', 'INFORMATIONAL', 'UNIMPLEMENTED', 'FAILED',
        'close', 'OK', 'close', 'other']
    assert '7.13.1   INFORMATIONAL' in out   # listed with its reason, not failing


@pytest.mark.parametrize('case_id, behaviour, close', [
    ('5.1', 'FAILED', 'OK'),
    ('3.2', 'NON-STRICT', 'OK'),
    ('10.1.1', 'UNIMPLEMENTED', 'OK'),
    ('7.1.1', 'OK', 'FAILED'),
    ('7.1.1', 'OK', 'WRONG CODE'),
    ('12.1.1', 'UNIMPLEMENTED', 'OK'),       # permessage-deflate is gated too
    ('13.7.18', 'FAILED', 'OK'),
    ('11.1.1', 'OK', 'FAILED'),              # close behaviour is gated in every chapter
])
def test_gated_failures(tmp_path, case_id, behaviour, close):
    code, out = check(write_report(tmp_path, {**ALL_OK, case_id: (behaviour, close)}))
    assert code == 1, out
    assert 'FAILS THE CHECK: case %s' % case_id in out
    assert 'result: result of %s' % case_id in out
    assert out.splitlines()[-1].endswith('1 failed')


def test_other_chapters_are_reported_not_gated(tmp_path):
    code, out = check(write_report(tmp_path, {**ALL_OK, '11.1.1': ('FAILED', 'OK')}))
    assert code == 0, out
    assert '11.1.1   FAILED' in out and 'FAILS THE CHECK' not in out


def test_missing_report(tmp_path):
    code, out = check(tmp_path / 'index.json')
    assert code == 2 and 'no report' in out


def test_kosoku_report_with_its_client(tmp_path):
    index = write_report(tmp_path, ALL_OK, agent='127.0.0.1:40321',
                         client={'name': 'kosoku', 'version': '0.1.0'})
    code, out = check(index)
    assert code == 0, out
    assert out.splitlines()[0] == 'Cases run by kosoku 0.1.0:'
    assert out.splitlines()[1].split()[:2] == ['chapter', 'cases']
    assert out.splitlines()[-1] == 'autobahn: 5 passed, 0 failed (kosoku 0.1.0)'


def test_a_case_kosoku_could_not_run_fails_with_its_own_column(tmp_path):
    code, out = check(write_report(tmp_path, {**ALL_OK, '12.1.1': ('ERROR', 'FAILED')},
                                   agent='127.0.0.1:40321'))
    assert code == 1, out
    assert out.splitlines()[0].split()[7] == 'ERROR'
    assert 'FAILS THE CHECK: case 12.1.1' in out


def test_several_agents_need_one_named(tmp_path):
    index = write_report(tmp_path, ALL_OK)
    agents = json.loads(index.read_text())
    index.write_text(json.dumps({**agents, 'other': agents['superserver']}))
    code, out = check(index)
    assert code == 2 and 'name one with --agent' in out
    assert check(index, '--agent', 'other')[0] == 0


def fake_python27(directory, executable=True):
    directory.mkdir(parents=True, exist_ok=True)
    python = directory / 'python2.7'
    python.write_text('#!/bin/sh\n')
    python.chmod(0o755 if executable else 0o644)
    return python


@pytest.fixture
def python27_elsewhere(monkeypatch, tmp_path):
    """A Python 2.7 in pyenv's versions and on PATH, none named by SUPERSERVER_PYTHON27."""
    monkeypatch.setenv('PYENV_ROOT', str(tmp_path / 'pyenv'))
    monkeypatch.setenv('PATH', str(fake_python27(tmp_path / 'bin').parent))
    monkeypatch.delenv('SUPERSERVER_PYTHON27', raising=False)
    return fake_python27(tmp_path / 'pyenv' / 'versions' / '2.7.18' / 'bin')


@pytest.mark.parametrize('python27', ['', 'missing', 'not executable', 'a directory'])
def test_a_set_but_useless_python27_hides_the_others(monkeypatch, tmp_path,
                                                     python27_elsewhere, python27):
    value = {'': '', 'missing': str(tmp_path / 'nowhere' / 'python2.7'),
             'not executable': str(fake_python27(tmp_path / 'plain', executable=False)),
             'a directory': str(tmp_path)}[python27]
    monkeypatch.setenv('SUPERSERVER_PYTHON27', value)
    assert clients.find_python27() is None
    assert clients.choose().name == 'kosoku'
    with pytest.raises(clients.ClientMissing, match=r'SUPERSERVER_PYTHON27 alone'):
        clients.choose('wstest')


def test_a_python27_named_by_the_environment_runs_wstest(monkeypatch, tmp_path,
                                                         python27_elsewhere):
    named = fake_python27(tmp_path / 'named')
    monkeypatch.setenv('SUPERSERVER_PYTHON27', str(named))
    client = clients.choose()
    assert (client.name, client.version, client.python27) == ('wstest', '0.8.2', named)
    assert clients.choose('wstest').python27 == named
    assert clients.choose('kosoku').name == 'kosoku'


def test_unset_pyenv_comes_before_path(monkeypatch, tmp_path, python27_elsewhere):
    assert clients.choose().python27 == python27_elsewhere
    python27_elsewhere.unlink()
    assert clients.choose().python27 == tmp_path / 'bin' / 'python2.7'
    monkeypatch.setenv('PATH', '')
    assert clients.choose().name == 'kosoku'


def test_kosoku_takes_the_spec_as_arguments(tmp_path):
    spec = tmp_path / 'fuzzingclient.json'
    spec.write_text(json.dumps({
        'outdir': '/reports', 'servers': [{'agent': 'superserver', 'url': 'ws://h:1/ws/echo/'}],
        'cases': ['1.*', '12.1.1'], 'exclude-cases': ['1.1.2'], 'exclude-agent-cases': {}}))
    assert clients.Kosoku().command(spec)[1:] == [
        str(ROOT / 'autobahn' / 'kosoku_cli.py'), 'ws://h:1/ws/echo/', '--outdir', '/reports',
        '--include', '1.*', '--include', '12.1.1', '--exclude', '1.1.2']


def run(*args, env=None):
    result = subprocess.run([PYTHON, str(RUN), *args], capture_output=True, text=True,
                            timeout=600, env={**os.environ, **(env or {})})
    return result.returncode, result.stdout + result.stderr


def test_kosoku_passes_the_real_server_with_python27_hidden(tmp_path):
    # 12.1.1: 1,000 messages of 16 bytes, which superserver sends uncompressed on a
    # compressed connection (kosoku_cli.py gives them to the case as bytes).
    code, out = run('--cases', '1.1.1,2.1,5.1,12.1.1', '--reports', str(tmp_path),
                    env={'SUPERSERVER_PYTHON27': ''})
    lines = out.splitlines()
    assert code == 0, out
    assert lines[0].startswith('autobahn: client kosoku 0.1.')
    assert lines[0].endswith(': no Python 2.7 found for wstest')
    assert lines[-1].startswith('autobahn: 4 passed, 0 failed (kosoku 0.1.')
    assert (tmp_path / 'kosoku.log').is_file() and (tmp_path / 'index.html').is_file()


@pytest.mark.parametrize('client', [
    'kosoku',
    pytest.param('wstest', marks=pytest.mark.skipif(clients.find_python27() is None,
                                                    reason='no Python 2.7 for wstest')),
])
def test_broken_echo_fails_the_whole_run(project_env, tmp_path, client):
    # The real runner against a view that drops each connection's first message.
    code, out = run('--client', client, '--settings', 'tests.project.settings',
                    '--path', '/ws/drops-first/', '--cases', '1.1.1,1.1.2,1.1.3',
                    '--reports', str(tmp_path), env=project_env)
    assert code == 1, out
    assert 'FAILS THE CHECK: Send text message with payload 0' in out
    assert out.splitlines()[-1].startswith('autobahn: 0 passed, 3 failed (%s ' % client)
