from django.urls import path

from . import views

urlpatterns = [
    path('', views.index, name='index'),
    path('ws/echo/', views.echo, name='echo'),
]
