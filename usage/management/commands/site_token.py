from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from systems.models import Cluster
from usage.models import SiteToken


class Command(BaseCommand):
    help = (
        "Make, list or revoke the site tokens with which a cluster's accounting host pushes to "
        "POST /api/v1/usage/imports/. A new key is printed once; only its digest is stored."
    )

    def add_arguments(self, parser):
        actions = parser.add_mutually_exclusive_group(required=True)
        actions.add_argument(
            "--create", metavar="NAME", help="Make a token; NAME says what uses it."
        )
        actions.add_argument("--list", action="store_true", help="List the tokens.")
        actions.add_argument(
            "--revoke", metavar="KEY_START", help="Revoke the token whose key starts so."
        )
        parser.add_argument("--cluster", help="The cluster (required with --create).")

    def handle(self, *args, **options):
        if options["create"] is not None:
            return self._create(options["cluster"], options["create"])
        if options["list"]:
            return self._list(options["cluster"])
        return self._revoke(options["revoke"])

    def _create(self, cluster_name: str | None, name: str) -> None:
        if not cluster_name:
            raise CommandError("Name the cluster the token imports for: --cluster NAME.")
        cluster = Cluster.objects.filter(name=cluster_name).first()
        if cluster is None:
            known = ", ".join(Cluster.objects.order_by("name").values_list("name", flat=True))
            raise CommandError(f"Unknown cluster '{cluster_name}'. Known clusters: {known}.")
        if not name.strip():
            raise CommandError("Give the token a name that says what uses it.")
        token = SiteToken(cluster=cluster, name=name.strip()[:100])
        key = token.key_issue()
        token.save()
        self.stderr.write(f"Site token for {cluster.name} made; the key is shown only now:")
        self.stdout.write(key)

    def _list(self, cluster_name: str | None) -> None:
        tokens = SiteToken.objects.select_related("cluster").order_by("cluster__name", "created_at")
        if cluster_name:
            tokens = tokens.filter(cluster__name=cluster_name)
        for token in tokens:
            used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
            state = f"revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else "active"
            self.stdout.write(
                f"{token.key_start}  {token.cluster.name}  {state}  last used {used}  {token.name}"
            )

    def _revoke(self, key_start: str) -> None:
        start = key_start[: len(SiteToken.KEY_PREFIX) + 6]  # as --list shows it, or the key
        matches = list(SiteToken.objects.active().filter(key_start=start))
        if len(start) < len(SiteToken.KEY_PREFIX) + 6 or len(matches) != 1:
            raise CommandError(
                f"No single active token starts with '{key_start}': give the key start that "
                "--list shows."
            )
        token = matches[0]
        SiteToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
        self.stdout.write(f"Revoked {token}.")
