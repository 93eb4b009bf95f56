from django.contrib.auth import authenticate, login
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST


def chat(request):
    """ws4redis's broadcast chat page, on the facility ``?facility=`` names."""
    return render(request, 'chat.html', {'facility': request.GET.get('facility', 'chat')})


@csrf_exempt
@require_POST
def log_in(request):
    """A login as a ws4redis project has one (its groups go into the session)."""
    user = authenticate(request, username=request.POST.get('username'),
                        password=request.POST.get('password'))
    if user is None:
        return HttpResponse('wrong username or password', status=403)
    login(request, user)
    return HttpResponse(status=204)
