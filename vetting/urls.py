app_name = "vetting"

urlpatterns = []
