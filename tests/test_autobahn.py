"""The Autobahn harness: the checker judges reports right, and a broken echo fails the run."""
import json
import os
import subprocess

import pytest

from .server_process import PYTHON, ROOT

CHECK = ROOT / 'autobahn' / 'check.py'


def write_report(directory, cases):
    """An index.json and per-case reports, as wstest writes them."""
    index = {}
    for case_id, (behaviour, close) in cases.items():
        reportfile = 'superserver_case_%s.json' % case_id.replace('.', '_')
        (directory / reportfile).write_text(json.dumps({
            'description': 'case %s' % case_id, 'result': 'result of %s' % case_id,
            'resultClose': 'close of %s' % case_id}))
        index[case_id] = {'behavior': behaviour, 'behaviorClose': close,
                          'reportfile': reportfile, 'duration': 1, 'remoteCloseCode': 1000}
    (directory / 'index.json').write_text(json.dumps({'superserver': index}))
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


def test_broken_echo_fails_the_whole_run(project_env, tmp_path):
    # The real runner against a view that drops each connection's first message.
    result = subprocess.run(
        [PYTHON, str(ROOT / 'autobahn' / 'run.py'), '--settings', 'tests.project.settings',
         '--path', '/ws/drops-first/', '--cases', '1.1.1,1.1.2,1.1.3', '--reports', str(tmp_path)],
        capture_output=True, text=True, timeout=600, env={**os.environ, **project_env})
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'FAILS THE CHECK: Send text message with payload 0' in result.stdout
    assert result.stdout.splitlines()[-1] == 'autobahn: 0 passed, 3 failed'
