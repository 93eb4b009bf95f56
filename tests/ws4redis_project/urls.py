from django.urls import include, path

from . import views

urlpatterns = [
    path('chat/', views.chat),
    path('login/', views.log_in),
    path('', include('extensions.ws4redis.urls')),   # WEBSOCKET_URL + facility
]
