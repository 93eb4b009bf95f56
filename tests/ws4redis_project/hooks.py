"""The project's WS4REDIS_ALLOWED_CHANNELS and WS4REDIS_PROCESS_REQUEST."""
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied


def allowed_channels(request, channels):
    """'private' is for logged-in users only; on 'readonly' nobody publishes."""
    facility = request.resolver_match.kwargs['facility']
    if facility == 'private' and not request.user.is_authenticated:
        raise PermissionDenied('log in to listen to private')
    if facility == 'readonly':
        return [channel for channel in channels if not channel.startswith('publish-')]
    return channels


def process_request(request):
    """``?token=...`` logs the socket in (a real project would check a signed token)."""
    token = request.GET.get('token')
    if token:
        request.user = get_user_model().objects.get(username=token)
