"""The page and its config are made once for each way of asking for them
(``page_answers``): what Gradio makes for a request, kept; every page load and ``gradio_client`` of the
suite goes through it as well."""

import uuid

import httpx
import pytest

import page_answers
from conftest import CLIENT_TIMEOUT_S


@pytest.fixture
def made(monkeypatch) -> list[str]:
    """Each answer Gradio made while the test ran for a request from one of the test's own hosts (the
    route it worked out a root URL for); a page another test left open (its heartbeat) is not counted."""
    from gradio import route_utils

    real, calls = route_utils.get_root_url, []

    def noted(request, route_path, root_path):
        if request.headers.get("x-forwarded-host", "").endswith(".example"):
            calls.append(route_path)
        return real(request=request, route_path=route_path, root_path=root_path)

    monkeypatch.setattr(route_utils, "get_root_url", noted)
    return calls


def _get(url: str, path: str, host: str, **params: str) -> httpx.Response:
    """``path`` asked for as a proxy in front of the studio at ``host`` asks for it."""
    answer = httpx.get(url + path, headers={"x-forwarded-host": host}, params=params, timeout=CLIENT_TIMEOUT_S)
    answer.raise_for_status()
    return answer


def _host() -> str:
    return f"{uuid.uuid4().hex[:12]}.example"


@pytest.mark.parametrize("path", ["", "config"])
def test_each_answer_is_made_once_for_its_way_of_asking(studio_server, made, path):
    url, host = studio_server[0], _host()
    first = _get(url, path, host)
    making = list(made)  # Gradio made the first (the page works its root out twice: itself and its API)
    again = _get(url, path, host)
    assert making and made == making, made  # the second was the one kept
    assert again.content == first.content and again.headers["content-type"] == first.headers["content-type"]
    assert host in first.text  # made for the root it was asked from


def test_each_root_gets_its_own_and_the_least_recently_asked_leaves(studio_server, made):
    url, hosts = studio_server[0], [_host() for _ in range(page_answers.KEPT)]
    roots = {host: _get(url, "config", host).json()["root"] for host in hosts}
    assert roots == {host: f"http://{host}" for host in hosts} and len(made) == len(hosts)
    assert _get(url, "config", hosts[0]).json()["root"] == f"http://{hosts[0]}"  # kept, and now the latest
    assert len(made) == len(hosts)
    newest = _host()
    assert _get(url, "config", newest).json()["root"] == f"http://{newest}"  # one more: hosts[1] leaves
    assert _get(url, "config", hosts[1]).json()["root"] == f"http://{hosts[1]}"
    assert len(made) == len(hosts) + 2, made


def test_a_header_given_twice_is_read_in_the_order_it_came(studio_server, made):
    """Gradio reads a header's first line: two orders are two roots, never one answer kept for both."""
    url, first, second = studio_server[0], _host(), _host()
    for ahead, behind in ((first, second), (second, first), (first, second)):
        headers = [("x-forwarded-host", ahead), ("x-forwarded-host", behind)]
        answer = httpx.get(f"{url}config", headers=headers, timeout=CLIENT_TIMEOUT_S)
        assert answer.json()["root"] == f"http://{ahead}", (ahead, answer.json()["root"])
    assert len(made) == 2, made  # the third was the first's, kept


def test_a_deep_link_is_made_for_its_request(studio_server, made):
    url, host = studio_server[0], _host()
    for _ in range(2):
        _get(url, "config", host, deep_link="a-shared-result")
        # Its name escaped: Starlette reads a deep link still.
        httpx.get(
            f"{url}config?deep%5Flink=a-shared-result", headers={"x-forwarded-host": host}, timeout=CLIENT_TIMEOUT_S
        ).raise_for_status()
    assert len(made) == 4, made
