from django.urls import path

from compliance import views

app_name = "governance"

urlpatterns = [
    path("governance/annual-report/", views.annual_report_page, name="annual_report"),
    path("governance/register.csv", views.register_csv_download, name="register_csv"),
]
