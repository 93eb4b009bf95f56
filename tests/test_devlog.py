"""Development tracebacks (``extensions.devlog``): which frames ``user_traceback`` keeps.
The tracebacks of a real server are tested in ``tests/test_command.py``."""
import json
import re
import sys
import traceback

import pytest

from extensions.devlog import format_exception_with_locals, user_traceback


def defined_in(module, name, body='return call(*args)'):
    """A function ``name(call, *args)`` of a module named ``module``: by default, one that
    passes the request on."""
    namespace = {'__name__': module}
    exec('def %s(call=None, *args):\n    %s\n' % (name, body), namespace)
    return namespace[name]


server = defined_in('extensions.adaptation', 'server')
handler = defined_in('django.core.handlers.base', 'handler')
middleware_chain = defined_in('django.utils.deprecation', 'middleware_chain')
project_middleware = defined_in('myproject.middleware', 'project_middleware')
refusing = defined_in('django.core.handlers.exception', 'refusing', 'raise ValueError()')


def view():
    json.loads('{')   # raises in the standard library


def view_calling_the_handler():
    handler(view)


def names(tb):
    return [frame.f_code.co_name for frame, _ in traceback.walk_tb(tb)]


def traceback_of(*calls):
    try:
        server(*calls)
    except ValueError:
        return sys.exc_info()[2].tb_next   # from server() on


JSON_FRAMES = ['loads', 'decode', 'raw_decode']


@pytest.mark.parametrize('calls, kept', [
    ((handler, middleware_chain, view), ['view', *JSON_FRAMES]),
    ((handler, project_middleware, middleware_chain, view),
     ['project_middleware', 'view', *JSON_FRAMES]),
    # Raised in the machinery, called by the project's code: shown from there on.
    ((handler, project_middleware, handler, refusing),
     ['project_middleware', 'handler', 'refusing']),
    ((handler, view_calling_the_handler), ['view_calling_the_handler', 'view', *JSON_FRAMES]),
    # No frame but the machinery's: nothing else to show.
    ((handler, refusing), ['server', 'handler', 'refusing']),
])
def test_frames_carrying_the_request_are_left_out_above_the_projects_code(calls, kept):
    assert names(user_traceback(traceback_of(*calls))) == kept


def test_locals_are_shown_for_the_frames_kept():
    tb = traceback_of(handler, project_middleware, middleware_chain, view)
    text = format_exception_with_locals((ValueError, ValueError('x'), tb))
    assert re.findall(r'^  File .*, in (\w+)$', text, re.M) == [
        'project_middleware', 'view', *JSON_FRAMES]
    assert '      call = <function middleware_chain at ' in text   # project_middleware's
    assert "      s = '{'" in text   # json's
    assert text.endswith('ValueError: x')
