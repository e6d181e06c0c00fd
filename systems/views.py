from django.db.models import Prefetch
from django.shortcuts import render
from django.views.decorators.http import require_GET

from systems.models import AccessModePartition, Call
from systems.selectors import access_modes_by_size


@require_GET
def landing(request):
    modes = access_modes_by_size().prefetch_related(
        Prefetch(
            "accessmodepartition_set",
            queryset=AccessModePartition.objects.select_related("partition__cluster__site"),
        )
    )
    calls = Call.objects.open_now().prefetch_related(Prefetch("access_modes", queryset=modes))
    return render(request, "systems/landing.html", {"calls": calls})
