from django.urls import path

from . import views_governance

app_name = "governance"

urlpatterns = [
    path("governance/annual-report/", views_governance.annual_report_page, name="annual_report"),
    path("governance/register.csv", views_governance.register_csv_download, name="register_csv"),
]
