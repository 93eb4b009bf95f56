"""The package as users get it: ``pip install .``, and the sdist and wheel that
``python -m build`` makes, checked by twine and installed into a fresh virtualenv.

The wheel goes into a virtualenv made by uv on the newest Python here, where the resolver
picks the newest Django the package allows, beside a project ``django-admin startproject``
made with that Django. README.md's steps for using superserver in a project are then
followed as written: the code the test runs (the echo view, the ``serve.py`` script) and
the settings line it adds come from README.md itself. 13 to 18 s in all here (uv installs
in seconds what pip takes minutes for), most of it pip, the build and the servers' starts.
"""
import ast
import configparser
import email
import importlib.util
import os
import re
import signal
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
import requests
import websocket

from .server_process import PYTHON, ROOT, Process, ServerProcess, free_port, wait_until
from .test_readme import BLOCKS
from .virtualenvs import copy_source, newest_python, run, uv, uv_virtualenv

#: The Python the wheel is tried on: the newest this machine has.
NEWEST_PYTHON = '3.13'

#: The README blocks the test runs as they are: the view at its top, and the script of
#: 'Using it in your project' that serves without the command.
ECHO_VIEW = BLOCKS['from extensions.decorators import require_websocket']
SERVE_SCRIPT = BLOCKS['# serve.py, beside manage.py: python serve.py']

#: A plain page of the project: what it runs with and whether it runs patched.
INSTALLED_VIEW = '''
import django
import extensions
from django.http import JsonResponse
from gevent import monkey


def installed(request):
    return JsonResponse({'django': django.get_version(), 'extensions': extensions.__file__,
                         'patched': monkey.is_module_patched('socket')})
'''

#: Added to startproject's urls.py, which imports ``path`` already.
URLS = '''
from . import echo, views

urlpatterns += [path('ws/echo/', echo.echo), path('installed/', views.installed)]
'''


def test_pip_install_gives_importable_modules_and_pinned_dependencies(tmp_path):
    source, target = copy_source(tmp_path / 'source'), tmp_path / 'site'
    # pip, as users run it; uv's where this virtualenv has no pip (nox makes them so).
    pip = [PYTHON, '-m', 'pip', 'install'] if importlib.util.find_spec('pip') else [
        uv(), 'pip', 'install', '--python', PYTHON]
    subprocess.run([*pip, '--quiet', '--no-deps', '--target', str(target), str(source)],
                   check=True, capture_output=True, timeout=300)
    # Import from the installed copy only, from a directory with no sources in it.
    result = subprocess.run(
        [PYTHON, '-c', 'import gevent_specific, extensions.adaptation,'
         ' extensions.management.commands.superserver;'
         ' print(extensions.__file__); print(gevent_specific.__file__)'],
        cwd=tmp_path, env={'PYTHONPATH': str(target), 'PATH': '/usr/bin:/bin'},
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for path in result.stdout.split():
        assert Path(path).is_relative_to(target)
    metadata = next(target.glob('superserver-*.dist-info')) / 'METADATA'
    requires = [line.split(': ', 1)[1] for line in metadata.read_text().splitlines()
                if line.startswith('Requires-Dist') and 'extra ==' not in line]
    assert sorted(r.split('<')[0].split('>')[0].lower() for r in requires) == [
        'cryptography', 'django', 'django-extensions', 'gevent', 'isal', 'websockets',
        'werkzeug', 'ws4py']
    assert all('<' in r and '>=' in r for r in requires), requires
    assert not (target / 'superserver').exists()   # the demo project stays in the repo
    assert not (target / 'tests').exists()


# -- python -m build, twine check ---------------------------------------------------------


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    """``(sdist, wheel, source)``: what ``python -m build`` makes of a clean copy of the
    tree (the wheel is built from the sdist, so a file the sdist lacks fails here), with
    uv as its installer where there is one."""
    directory = tmp_path_factory.mktemp('build')
    source = copy_source(directory / 'superserver')
    installer = ['--installer', 'uv'] if uv() else []
    result = subprocess.run(
        [PYTHON, '-m', 'build', *installer, '--outdir', str(directory / 'dist'), str(source)],
        capture_output=True, text=True, timeout=300, env={**os.environ, 'UV': uv() or 'uv'})
    assert result.returncode == 0, result.stdout + result.stderr
    [sdist] = (directory / 'dist').glob('*.tar.gz')
    [wheel] = (directory / 'dist').glob('*.whl')
    return sdist, wheel, source


def metadata(wheel):
    with zipfile.ZipFile(wheel) as archive:
        [name] = [name for name in archive.namelist() if name.endswith('.dist-info/METADATA')]
        return email.message_from_bytes(archive.read(name))


def test_twine_check_strict_passes_on_the_sdist_and_the_wheel(built):
    sdist, wheel, source = built
    result = subprocess.run([PYTHON, '-m', 'twine', 'check', '--strict', str(sdist), str(wheel)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count('PASSED') == 2, result.stdout


def package_files(source):
    """What the package needs at run time: every file of extensions/ (modules, and any
    template or static file one may add) and gevent_specific.py."""
    return {path.relative_to(source).as_posix() for path in source.rglob('*')
            if path.is_file() and path.relative_to(source).parts[0] == 'extensions'
            and '__pycache__' not in path.parts} | {'gevent_specific.py'}


def test_the_wheel_holds_the_package_and_nothing_else(built):
    sdist, wheel, source = built
    with zipfile.ZipFile(wheel) as archive:
        names = {name for name in archive.namelist() if '.dist-info/' not in name}
    assert names == package_files(source)   # no superserver/ (the demo) nor tests/


def test_the_sdist_holds_the_sources_and_the_documents(built):
    sdist, wheel, source = built
    with tarfile.open(sdist) as archive:
        top = archive.getnames()[0].split('/')[0]
        names = {name[len(top) + 1:] for name in archive.getnames()
                 if archive.getmember(name).isfile()}
    assert package_files(source) <= names
    expected = {'README.md', 'CHANGELOG.md', 'setup.cfg', 'pyproject.toml', 'PKG-INFO',
                'docs/deployment.md', 'docs/ws4redis.md'}
    if (source / 'LICENSE').exists():
        expected.add('LICENSE')
    assert expected <= names
    # The demo project and the suite, which needs it, stay in the repository.
    assert not [name for name in names if name.startswith(('superserver/', 'tests/'))]


def test_the_version_is_setup_cfg_s_and_the_changelog_s_newest(built):
    sdist, wheel, source = built
    config = configparser.ConfigParser()
    config.read(ROOT / 'setup.cfg')
    version = config['metadata']['version']
    assert metadata(wheel)['Version'] == version
    assert wheel.name == 'superserver-%s-py3-none-any.whl' % version
    assert sdist.name == 'superserver-%s.tar.gz' % version
    headings = re.findall(r'^## (.+)$', (ROOT / 'CHANGELOG.md').read_text(), re.MULTILINE)
    assert re.fullmatch(r'%s \(\d{4}-\d\d-\d\d\)' % re.escape(version), headings[0]), headings


# -- the wheel in a fresh virtualenv, README.md's steps in a stock project --------------


def readme_steps():
    """The numbered steps of README.md's 'Using it in your project', each as its text."""
    text = (ROOT / 'README.md').read_text()
    section = re.search(r'^## Using it in your project\n(.*?)^## ', text,
                        re.MULTILINE | re.DOTALL)[1]
    return re.split(r'^\d+\. ', section, flags=re.MULTILINE)[1:]


@pytest.fixture(scope='module')
def fresh(built, tmp_path_factory):
    """``(python, project, startproject's files)``: the wheel installed into a new
    virtualenv on the newest Python, with the newest Django it allows, and a project that
    virtualenv's ``django-admin startproject myproject`` made, changed only as README.md's
    steps say, with a websocket view (the README's) and a plain page."""
    interpreter = newest_python(NEWEST_PYTHON)
    if interpreter is None:
        pytest.skip('no Python %s (pyenv or PATH) to install the wheel on' % NEWEST_PYTHON)
    sdist, wheel, source = built
    directory = tmp_path_factory.mktemp('fresh')
    # Step 1 installs the package: `pip install .` builds this wheel and installs it.
    install, wsgi, command = readme_steps()[:3]
    assert '`pip install .`' in install, install
    python = uv_virtualenv(directory / 'venv', interpreter, wheel)
    project = directory / 'project'
    project.mkdir()
    run(directory / 'venv' / 'bin' / 'django-admin', 'startproject', 'myproject', '.',
        cwd=project)
    stock = {name: (project / name).read_text() for name in ('manage.py', 'myproject/wsgi.py')}
    # Step 1 names the app to add to INSTALLED_APPS; step 2 leaves wsgi.py alone.
    app = ast.literal_eval(re.search(r"add `('[\w.]+')` to `INSTALLED_APPS`", install)[1])
    with (project / 'myproject' / 'settings.py').open('a') as settings:
        settings.write('\nINSTALLED_APPS += [%r]\n' % app)
    assert 'Leave `wsgi.py` as `startproject` wrote it' in wsgi, wsgi
    assert 'Run `./manage.py superserver [addrport]`' in command, command
    assert SERVE_SCRIPT in '\n'.join(line.strip() for line in command.splitlines())
    (project / 'myproject' / 'echo.py').write_text(ECHO_VIEW)
    (project / 'myproject' / 'views.py').write_text(INSTALLED_VIEW)
    with (project / 'myproject' / 'urls.py').open('a') as urls:
        urls.write(URLS)
    return python, project, stock


def newest_django_classifier(wheel):
    """The newest Django release the wheel's classifiers name (``'6.1'``)."""
    releases = [classifier.rsplit(' :: ', 1)[1] for classifier in metadata(wheel).get_all(
        'Classifier') if re.fullmatch(r'Framework :: Django :: [\d.]+', classifier)]
    return max(releases, key=lambda release: tuple(map(int, release.split('.'))))


def assert_serves_the_project(url, venv):
    """The plain page runs patched on the wheel's package and the newest Django; the
    README's echo view greets, echoes text and binary, and refuses plain requests."""
    installed = requests.get(url + '/installed/', timeout=10).json()
    assert installed['patched'] is True
    assert Path(installed['extensions']).is_relative_to(venv), installed
    ws = websocket.create_connection('ws' + url[len('http'):] + '/ws/echo/', timeout=10)
    try:
        assert ws.recv() == 'hello, AnonymousUser'
        ws.send('from the wheel')
        assert ws.recv() == 'from the wheel'
        ws.send_binary(b'\xffbinary')
        assert ws.recv() == b'\xffbinary'
    finally:
        ws.close()
    plain = requests.get(url + '/ws/echo/', timeout=10)
    assert (plain.status_code, plain.headers['Upgrade']) == (426, 'websocket')
    return installed


def test_the_wheel_on_the_newest_django_serves_a_stock_project_by_the_readme(built, fresh):
    sdist, wheel, source = built
    python, project, stock = fresh
    newest = newest_django_classifier(wheel)
    django = run(python, '-c', 'import django; print(django.get_version())', cwd=project)
    assert django.startswith(newest + '.'), (django, newest)
    # Step 3: manage.py as startproject wrote it, so the command runs itself again patched.
    server = ServerProcess('--noreload', '127.0.0.1:0', cwd=project,
                           manage=project / 'manage.py', python=python,
                           env={'DJANGO_SETTINGS_MODULE': 'myproject.settings'})
    try:
        installed = assert_serves_the_project(server.url, python.parent.parent)
        assert installed['django'] == django.strip()
        assert requests.get(server.url + '/admin/login/', timeout=10).status_code == 200
        banner = server.wait_for(r'^superserver \S+ \(').string
        assert banner.startswith('superserver %s (' % metadata(wheel)['Version']), banner
        assert ', Django %s,' % django.strip() in banner, banner
        assert 'not patched' not in server.output()
    finally:
        server.stop()
    assert stock == {name: (project / name).read_text() for name in stock}


def test_the_wheel_serves_the_readme_s_serve_py_script(fresh):
    """As written but for its port (8000 may be taken here), without
    DJANGO_SETTINGS_MODULE in the environment; SIGTERM stops it with status 0."""
    python, project, stock = fresh
    port = free_port()
    assert SERVE_SCRIPT.count('8000') == 1
    (project / 'serve.py').write_text(SERVE_SCRIPT.replace('8000', str(port)))
    script = Process(['env', '-u', 'DJANGO_SETTINGS_MODULE', str(python), 'serve.py'],
                     cwd=project)
    try:
        url = 'http://127.0.0.1:%d' % port

        def answers():
            assert script.process.poll() is None, script.output()
            try:
                return requests.get(url + '/installed/', timeout=5).ok
            except requests.ConnectionError:
                return False
        assert wait_until(answers, timeout=30), script.output()
        assert_serves_the_project(url, python.parent.parent)
        script.signal(signal.SIGTERM)
        assert script.wait(15) == 0, script.output()
    finally:
        script.stop()
