from html.parser import HTMLParser

import pytest

from tests.conftest import client_for


@pytest.mark.django_db
def test_applicant_has_no_admin_access(client, applicant):
    response = client_for(client, applicant).get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_admin_shows_the_six_partitions_with_their_figures(client, operator, reference_data):
    page = client_for(client, operator).get("/admin/systems/partition/").content.decode()
    for text in ("standard-g", "boost_usr_prod", "acc", "booster", "191.50", "989.00", "23,824"):
        assert text in page
    assert page.count('class="field-accelerator"') == 6


@pytest.mark.django_db
def test_operator_edits_partitions_but_not_calls(operator):
    assert operator.has_perm("systems.change_partition")
    assert not operator.has_perm("systems.change_call")


@pytest.mark.django_db
def test_call_manager_edits_calls_but_not_partitions(call_manager):
    assert call_manager.has_perm("systems.change_call")
    assert not call_manager.has_perm("systems.change_partition")


@pytest.mark.django_db
def test_only_governance_changes_the_threshold_policy(governance_officer, call_manager, operator):
    assert governance_officer.has_perm("systems.add_thresholdpolicy")
    assert not call_manager.has_perm("systems.change_thresholdpolicy")
    assert not operator.has_perm("systems.change_thresholdpolicy")


class _FormFields(HTMLParser):
    """The values a browser would submit from the page's change form."""

    def __init__(self):
        super().__init__()
        self.data: dict[str, list[str]] = {}
        self._select = self._textarea = None
        self._text = ""

    def _add(self, name, value):
        self.data.setdefault(name, []).append(value)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "button", "file"):
            if attrs.get("type") not in ("checkbox", "radio") or "checked" in attrs:
                self._add(name, attrs.get("value") or "")
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in attrs:
            self._add(self._select, attrs.get("value") or "")
        elif tag == "textarea" and name:
            self._textarea, self._text = name, ""

    def handle_data(self, data):
        if self._textarea:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea:
            self._add(self._textarea, self._text.removeprefix("\n"))
            self._textarea = None


def _change_form(page: str) -> dict[str, list[str]]:
    form = page.split('id="call_form"', 1)[1].split("</form>", 1)[0]
    parser = _FormFields()
    parser.feed(form)
    return parser.data


@pytest.mark.django_db
def test_reviewer_cannot_change_calls(client, reviewer, call_manager, open_call):
    url = f"/admin/systems/call/{open_call.pk}/change/"
    title = open_call.title
    data = _change_form(client_for(client, call_manager).get(url).content.decode())
    data["title"] = ["Renamed by a reviewer"]

    response = client_for(client, reviewer).post(url, data)

    assert response.status_code == 403
    open_call.refresh_from_db()
    assert open_call.title == title != "Renamed by a reviewer"
    assert reviewer.has_perm("systems.view_call")
    assert not reviewer.has_perm("systems.change_call")
    # The same form from a call manager does rename the call: the refusal above is the permission.
    response = client_for(client, call_manager).post(url, data)
    assert response.status_code == 302, response.content.decode()[-3000:]
    open_call.refresh_from_db()
    assert open_call.title == "Renamed by a reviewer"
