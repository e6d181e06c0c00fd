"""Pagination over tables too large to count on every page view."""

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property


class EstimatedCountPaginator(Paginator):
    """Counts an unfiltered list of a large PostgreSQL table from the planner's statistics
    (pg_class.reltuples, kept by ANALYZE and autovacuum) instead of reading every row.

    Filtered lists, small tables and other databases are counted exactly. `estimated` says
    which it was, so a page can say "about".
    """

    # Below this many rows an exact count is cheap, and a list of a few rows must be exact.
    estimate_from = 100_000

    def __init__(self, object_list, per_page, *args, **kwargs):
        super().__init__(object_list, per_page, *args, **kwargs)
        self.estimated = False

    @cached_property
    def count(self) -> int:
        estimate = self._table_estimate()
        if estimate is not None and estimate >= self.estimate_from:
            self.estimated = True
            return estimate
        return super().count

    def _table_estimate(self) -> int | None:
        queryset = self.object_list
        query = getattr(queryset, "query", None)
        if query is None or query.where or query.distinct or query.combinator:
            return None
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                [connection.ops.quote_name(queryset.model._meta.db_table)],
            )
            row = cursor.fetchone()
        # -1 before the first ANALYZE: no estimate yet.
        return row[0] if row and row[0] >= 0 else None


class CountedPaginator(Paginator):
    """A paginator told the number of rows, when the page has already counted them (with its
    totals, say) and a second count would read them all again."""

    def __init__(self, object_list, per_page, *, count: int):
        super().__init__(object_list, per_page)
        self.__dict__["count"] = count


def page_of(object_list, number, *, per_page: int):
    """The page `number` (as given in the query string; a wrong one gives the nearest page) of
    `object_list`, with `links`: the page numbers to link to, long runs elided."""
    page = Paginator(object_list, per_page).get_page(number)
    page.links = list(page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1))
    return page
