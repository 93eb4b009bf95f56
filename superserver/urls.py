from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path('', views.index, name='index'),
    path('ws/echo/', views.echo, name='echo'),
    path('accounts/login/', auth_views.LoginView.as_view(), name='login'),
    path('accounts/logout/', auth_views.LogoutView.as_view(), name='logout'),
    path('accounts/signup/', views.signup, name='signup'),
    path('chat/<slug:room>/', views.chat_page, name='chat'),
    path('ws/chat/<slug:room>/', views.chat, name='chat-socket'),
    path('clock/', views.clock_page, name='clock'),
    path('sse/clock/', views.clock, name='clock-events'),
]
