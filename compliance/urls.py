from django.urls import path

from compliance import views

app_name = "governance"

urlpatterns = [
    path("governance/annual-report/", views.annual_report_page, name="annual_report"),
    path("governance/register.csv", views.register_csv_download, name="register_csv"),
    path("governance/footprint/", views.footprint_page, name="footprint"),
    # Confidential reporting: no account, no name, no trace in the logs (compliance.privacy).
    path("report/", views.report_page, name="report"),
    path("report/case/", views.report_case_page, name="report_case"),
]
