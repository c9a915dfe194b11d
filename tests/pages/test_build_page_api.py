"""The build page over HTTP: opened by its signed link alone, one build only, escaped, masked, followed live."""

from __future__ import annotations

import json
from datetime import timedelta

from fastapi.testclient import TestClient
from support.build_pages import Builds

from starforge_dag.api import create_app
from starforge_dag.core.models import utcnow
from starforge_dag.core.states import BuildState
from starforge_dag.store.variables import NewValue

CSP = "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:"


def anonymous(settings) -> TestClient:
    """No Authorization header: what someone who only has the link sends."""
    return TestClient(create_app(settings))


def test_get_build_links_a_page_that_opens_without_a_token(api_client, settings, builds: Builds) -> None:
    build = builds.failed("executor failed running [/bin/sh -c make]: exit code: 2", lines=["building", "make: oops"])
    detail = api_client.get(f"/builds/{build.id}").json()
    assert detail["page_url"].startswith(f"http://testserver/page/{build.id}.")
    assert detail["explanation"]["cls"] == "run_failed"
    assert detail["explanation"]["title"] == "`make` failed with exit code 2"

    page = anonymous(settings).get(detail["page_url"].removeprefix("http://testserver"))

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"].startswith(CSP)
    assert page.headers["referrer-policy"] == "no-referrer"
    html = page.text
    assert "acme" in html and "web" in html and build.commit_sha[:12] in html
    assert f"https://github.com/acme/web/commit/{build.commit_sha}" in html
    assert '<div class="line s-stdout" id="L2"><a class="n" href="#L2">2</a><span class="t">make: oops</span>' in html
    assert "`make` failed with exit code 2" in html and "run it locally" in html
    for state in ("Queued", "Cloning", "Planning", "Building", "Failed"):
        assert f'<span class="state">{state}</span>' in html
    assert "http://" not in html.replace("https://github.com", "")  # no third-party host, nothing absolute of ours


def test_public_url_is_the_base_of_page_links(api_client, settings, builds: Builds) -> None:
    build = builds.queued()
    settings.public_url = "https://builds.example/starforge"
    assert (
        api_client.get(f"/builds/{build.id}")
        .json()["page_url"]
        .startswith(f"https://builds.example/starforge/page/{build.id}.")
    )


def test_tampered_expired_and_unknown_links_are_the_same_plain_404_page(settings, builds: Builds, page_path) -> None:
    build = builds.queued()
    other = builds.queued()
    good = page_path(build.id)
    expired = "/page/" + settings.page_links().token(build.id, utcnow() - timedelta(days=31))
    forged = good.replace(f"/page/{build.id}.", f"/page/{other.id}.")
    unknown = page_path(999_999)
    web = anonymous(settings)
    assert web.get(good).status_code == 200
    answers = [web.get(path) for path in (expired, forged, unknown, "/page/garbage", good + "x")]
    assert [a.status_code for a in answers] == [404] * 5
    assert len({a.text for a in answers}) == 1 and "<h1>Not found</h1>" in answers[0].text
    assert answers[0].headers["content-security-policy"].startswith(CSP)
    assert web.get(expired.removesuffix("/") + "/events").status_code == 404


def test_a_page_shows_nothing_of_another_build(settings, builds: Builds, page_path) -> None:
    mine = builds.failed("mine failed", lines=["my line"])
    theirs = builds.failed("their secret failure", lines=["their line"])
    html = anonymous(settings).get(page_path(mine.id)).text
    assert "my line" in html and "mine failed" in html
    assert "their line" not in html and "their secret failure" not in html and theirs.commit_sha[:12] not in html


def test_hostile_log_lines_and_errors_are_escaped(settings, builds: Builds, page_path) -> None:
    build = builds.failed(
        '<img src=x onerror="alert(1)">',
        lines=["\x1b[31m<script>alert('log')</script>\x1b[0m", '"><iframe src=//evil>'],
    )
    html = anonymous(settings).get(page_path(build.id)).text
    assert "<script>alert" not in html and "<img src=x" not in html and "<iframe" not in html
    assert "&lt;script&gt;alert(&#39;log&#39;)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    assert '<span class="fg-red">&lt;script&gt;' in html


def test_the_commit_s_message_and_author_are_shown_escaped(settings, build_store, builds: Builds, page_path) -> None:
    build = builds.failed("boom")
    build_store.set_commit_time(build.id, utcnow(), "Ship <script>alert('msg')</script>", "Ada <ada@example.com>")
    html = anonymous(settings).get(page_path(build.id)).text
    assert "<script>alert('msg')" not in html
    assert '<dd id="commit-message">Ship &lt;script&gt;alert(&#39;msg&#39;)&lt;/script&gt;</dd>' in html
    assert '<span id="commit-author">Ada &lt;ada@example.com&gt;</span>' in html


def test_secret_values_are_masked_on_the_page_and_in_the_live_log(
    settings, build_store, builds: Builds, page_path
) -> None:
    secret = "hunter2-very-secret-value"
    build_store.set_variables("acme", "web", [NewValue("API_KEY", secret, secret=True)], "ada", settings.secret_box())
    build = builds.running()
    builds.log(build.id, [f"using key {secret}", "npm ERR! 404 Not Found - GET https://r.example/" + secret])
    build_store.finish(build.id, BuildState.FAILED, "executor failed running [/bin/sh -c npm ci]: exit code: 1", "run")
    web = anonymous(settings)
    html = web.get(page_path(build.id)).text
    events = web.get(page_path(build.id) + "/events").text
    assert secret not in html and secret not in events
    assert "using key *****" in html and "using key *****" in events


def test_a_succeeded_build_shows_its_image_digest_and_that_desired_state_moved(
    settings, builds: Builds, page_path
) -> None:
    build = builds.succeeded()
    html = anonymous(settings).get(page_path(build.id)).text
    assert f'<code class="wrap" id="digest">{build.image_digest}</code>' in html
    assert build.image_ref in html
    assert "Desired state moved to this image: the deployer runs it (revision 1)." in html
    assert 'class="explanation' not in html and "page.js" not in html  # ended: nothing to follow


def test_a_superseded_build_links_the_page_of_the_build_that_replaced_it(
    settings, build_store, builds: Builds, page_path
) -> None:
    older = builds.queued(1)
    newer = builds.queued(2)
    assert build_store.get_build(older.id).status == BuildState.SUPERSEDED
    html = anonymous(settings).get(page_path(older.id)).text
    assert f"Superseded by build {newer.id}" in html
    link = html.split('<dd id="desired">', 1)[1].split('href="', 1)[1].split('"', 1)[0]
    assert link.startswith(f"http://testserver/page/{newer.id}.")
    assert anonymous(settings).get(link.removeprefix("http://testserver")).status_code == 200


def test_a_build_kept_behind_a_newer_desired_state_links_it(settings, build_store, builds: Builds, page_path) -> None:
    first = builds.running(1)
    second = builds.succeeded(builds.running(2))
    late = builds.succeeded(first)
    html = anonymous(settings).get(page_path(late.id)).text
    assert f'Desired state stayed at a newer commit: <a href="http://testserver/page/{second.id}.' in html


def test_the_depot_build_is_linked(settings, build_store, builds: Builds, page_path) -> None:
    build = builds.running()
    build_store.set_backend_build(
        build.id, "depot-build-123", "https://depot.dev/orgs/o/projects/p/builds/depot-build-123"
    )
    html = anonymous(settings).get(page_path(build.id)).text
    assert (
        '<a href="https://depot.dev/orgs/o/projects/p/builds/depot-build-123" rel="noreferrer">depot-build-123</a>'
        in html
    )


def parse_events(body: str) -> list[dict[str, str]]:
    events = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if line and not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
        if fields:
            events.append(fields)
    return events


def test_events_resume_after_the_last_event_id_without_losing_or_repeating_lines(
    settings, builds: Builds, page_path
) -> None:
    build = builds.running()
    builds.log(build.id, [f"line {n}" for n in range(10)])
    builds.succeeded(build)
    web = anonymous(settings)
    path = page_path(build.id) + "/events"

    first = parse_events(web.get(path).text)
    resumed = parse_events(web.get(path + "?after=2", headers={"Last-Event-ID": "6"}).text)

    lines = [e for e in first if e.get("event") == "line"]
    assert [e["id"] for e in lines] == [str(n) for n in range(10)]
    assert json.loads(lines[3]["data"]) == {"seq": 3, "n": 4, "stream": "stdout", "spans": [["", "line 3"]]}
    assert first[-1]["event"] == "end" and json.loads(first[-1]["data"])["status"] == "succeeded"
    assert [e["id"] for e in resumed if e.get("event") == "line"] == ["7", "8", "9"]
    assert [e["id"] for e in parse_events(web.get(path + "?after=8").text) if e.get("event") == "line"] == ["9"]


def test_the_stylesheet_and_script_are_served_by_the_api(settings) -> None:
    web = anonymous(settings)
    css, js = web.get("/page-static/page.css"), web.get("/page-static/page.js")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert js.status_code == 200 and "EventSource" in js.text


def test_the_openapi_schema_types_the_explanation_and_leaves_pages_out(api_client) -> None:
    spec = api_client.get("/openapi.json").json()
    detail = spec["components"]["schemas"]["BuildDetail"]["properties"]
    assert detail["explanation"]["anyOf"][0] == {"$ref": "#/components/schemas/Explanation"}
    assert "page_url" in detail
    explanation = spec["components"]["schemas"]["Explanation"]
    assert set(explanation["properties"]) >= {"cls", "title", "hint", "line", "line_no"}
    assert not any(path.startswith("/page") for path in spec["paths"])
