"""Django's async side under superserver: ``async def`` views (the async ORM among what
they await) and a sync view that calls ``async_to_sync``, which Django runs through
asgiref under WSGI; ``AsyncMiddleware`` is an async-only middleware for the chain."""
import asyncio

from asgiref.sync import async_to_sync, markcoroutinefunction, sync_to_async
from django.contrib.auth.models import User
from django.http import HttpResponse, JsonResponse
from gevent import monkey

from extensions.decorators import login_required


async def sleeps(request):
    """Awaits ``?seconds=`` (default 1) of asyncio.sleep."""
    await asyncio.sleep(float(request.GET.get('seconds', 1)))
    return HttpResponse('slept')


async def users(request):
    """The async ORM: a count, an async iteration and a query awaited in sync code."""
    count = await User.objects.acount()
    names = [user.username async for user in User.objects.order_by('username')]
    exists = await sync_to_async(User.objects.filter(username__in=names).exists)()
    return JsonResponse({'count': count, 'names': names, 'exists': exists})


@login_required
async def private(request):
    """An async view for logged-in users: the login redirect for others."""
    user = await request.auser()
    return HttpResponse(user.get_username())


async def _twice(number):
    await asyncio.sleep(float(number) / 10)
    return 2 * number


def calls_async(request):
    """A sync view that awaits through ``async_to_sync``."""
    return JsonResponse({'twice': async_to_sync(_twice)(int(request.GET.get('n', 1))),
                         'patched': monkey.is_module_patched('socket')})


class AsyncMiddleware:
    """Async only, as Django's documentation writes one: Django adapts it to the sync
    chain with ``async_to_sync``."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request):
        await asyncio.sleep(0)
        response = await self.get_response(request)
        response['X-Async-Middleware'] = 'awaited'
        return response
