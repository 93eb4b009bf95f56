"""What the greenlet of an open websocket keeps of the C stack while its view waits.

Python 3.11 runs a call of Python code from Python code in the same C frame, but calling
an instance (``__call__``) takes a new one, and a parked greenlet keeps its part of the C
stack for as long as it waits. So WSGI layers (``direct_call``) and Django's middleware
(``bind_middleware_chain``) are called through bound methods: these tests park a
request in its view and compare what the greenlet saved, layers bound or not.
"""
import greenlet
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from django.urls import path

from bench.project.settings import MIDDLEWARE   # startproject's seven
from extensions.adaptation import direct_call
from extensions.wsgi import bind_middleware_chain


def parked_view(request):
    greenlet.getcurrent().parent.switch()   # wait, as a websocket view waits for a message
    return HttpResponse('resumed')


urlpatterns = [path('parked/', parked_view)]


def saved_while_parked(call):
    """Bytes of C stack the greenlet running ``call()`` keeps while parked, and what
    ``call()`` returned once resumed."""
    worker = greenlet.greenlet(call)
    worker.switch()
    saved = worker._stack_saved
    assert not worker.dead, 'the call did not park'
    return saved, worker.switch()


class Layer:
    """A WSGI middleware that only passes the call on."""

    def __init__(self, application, bind):
        self.application = direct_call(application) if bind else application

    def __call__(self, environ, start_response):
        return self.application(environ, start_response)


def parked_application(environ, start_response):
    greenlet.getcurrent().parent.switch()
    return [b'resumed']


def wsgi_stack(bind, layers=8):
    application = parked_application
    for _ in range(layers):
        application = Layer(application, bind)
    top = direct_call(application) if bind else application
    return saved_while_parked(lambda: top({}, None))


def test_wsgi_layers_called_through_bound_methods_keep_less_stack():
    bound, result = wsgi_stack(bind=True)
    unbound, _ = wsgi_stack(bind=False)
    assert result == [b'resumed']
    # Each of the 8 layers costs a C frame when called as an instance: hundreds of bytes.
    assert unbound - bound >= 8 * 200, (bound, unbound)


@override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=MIDDLEWARE)
def django_stack(bind):
    handler = WSGIHandler()
    if bind:
        bind_middleware_chain(handler)
    request = RequestFactory().get('/parked/', HTTP_HOST='127.0.0.1')
    return saved_while_parked(lambda: handler.get_response(request))


def test_django_middleware_called_through_bound_methods_keeps_less_stack():
    bound, response = django_stack(bind=True)
    unbound, _ = django_stack(bind=False)
    assert (response.status_code, response.content) == (200, b'resumed')
    assert unbound - bound >= len(MIDDLEWARE) * 200, (bound, unbound)


@override_settings(MIDDLEWARE=MIDDLEWARE)
def test_every_middleware_is_bound_and_binding_twice_changes_nothing():
    handler = WSGIHandler()
    bind_middleware_chain(handler)
    bind_middleware_chain(handler)
    reached, layer = [], handler._middleware_chain
    while hasattr(layer, '__wrapped__'):
        middleware = layer.__wrapped__
        held = [cell.cell_contents for cell in layer.__closure__]
        if not hasattr(middleware, 'get_response'):
            break   # the innermost layer: the handler's own _get_response
        assert held == [middleware.__call__], type(middleware).__name__
        reached.append('%s.%s' % (type(middleware).__module__, type(middleware).__name__))
        layer = middleware.get_response
    assert reached == MIDDLEWARE
