from django.urls import path
from reports import views

urlpatterns = [
    path("reports/<int:size>", views.start_report),
    path("attempt", views.start_attempt),
    path("broken", views.start_broken),
    path("results/<str:result_id>", views.task_result),
]
