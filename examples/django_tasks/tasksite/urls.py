from django.urls import path
from reports import views

urlpatterns = [
    path("reports/<int:size>", views.start_report),
    path("results/<str:result_id>", views.report_result),
]
