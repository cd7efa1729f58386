"""The playground at ``/ui``, driven in headless Chromium (Debian's chromium through selenium) against a real
``rerankit serve`` app on 127.0.0.1 with the shipped ``default`` model over the demo corpus. Screenshots go to
``test-artifacts/`` at the repository root."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import headless_chromium, require_browser, requested_urls
from fastapi.testclient import TestClient
from test_server_support import running_server, wait_for

from rerankit.server import ServerConfig, create_app
from rerankit.server.config import ModelSpec

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
QUERY = "How do I reset my password?"
RESET = {"reset-steps", "reset-email"}


@pytest.fixture(scope="module")
def default_reranker():
    from rerankit import load_reranker

    return load_reranker("default")


def _app(reranker, keys: tuple[str, ...] = ()):
    config = ServerConfig(models=(ModelSpec("default", "default"), ModelSpec("again", "default")), api_keys=keys)
    return create_app(config, rerankers={"default": reranker, "again": reranker})


def test_the_api_behind_the_page(default_reranker):
    with TestClient(_app(default_reranker, ("secret",))) as client:
        page = client.get("/ui")
        assert page.status_code == 200 and "rerankit playground" in page.text
        assert "http://" not in page.text and "https://" not in page.text  # every asset is in the page
        assert client.get("/ui/api/config").json() == {"models": ["default", "again"], "corpus": "demo support corpus",
                                                        "needs_key": True}
        body = {"query": QUERY, "candidates": 7, "k": 3, "models": ["default", "again"]}
        assert client.post("/ui/api/search", json=body).status_code == 401
        auth = {"Authorization": "Bearer secret"}
        found = client.post("/ui/api/search", json=body, headers=auth).json()
        assert len(found["first_stage"]["hits"]) == 7 and [c["model"] for c in found["rerankers"]] == ["default", "again"]
        assert found["rerankers"][0]["results"][0]["id"] in RESET
        pasted = client.post("/ui/api/search", headers=auth, json={
            "query": "capital of france", "candidates": 3, "k": 2,
            "documents": ["Cats purr.", "Paris is the capital of France.", "Berlin is in Germany."]}).json()
        assert pasted["rerankers"][0]["results"][0]["id"] == "1"
        answer = client.post("/ui/api/ask", json={"query": QUERY}, headers=auth).json()
        assert answer["cited"] and answer["sources"][answer["cited"][0] - 1]["id"] in RESET
        too_many = client.post("/ui/api/search", headers=auth, json={**body, "models": ["a", "b", "c", "d"]})
        assert too_many.status_code == 400 and "models" in too_many.json()["message"]


def test_search_and_ask_in_chromium_with_and_without_an_api_key(default_reranker):
    require_browser()
    ARTIFACTS.mkdir(exist_ok=True)
    with running_server(_app(default_reranker, ("secret",))) as url, headless_chromium(1400, 1100) as browser:
        browser.get(f"{url}/ui")
        wait_for(lambda: browser.find_elements("css selector", "#models input"), "the models to load")
        query = browser.find_element("id", "query")
        query.clear()
        query.send_keys(QUERY)
        browser.find_element("id", "search").click()  # no key yet
        status = browser.find_element("id", "status")
        wait_for(lambda: "401" in status.text, "the 401")
        assert "needs an API key" in status.text and "error" in status.get_attribute("class")
        browser.save_screenshot(str(ARTIFACTS / "playground-401.png"))

        browser.find_element("id", "key").send_keys("secret")
        browser.find_element("css selector", "#models input[value=again]").click()  # two rerankers side by side
        browser.find_element("id", "search").click()
        wait_for(lambda: len(browser.find_elements("css selector", ".column")) == 3, "three columns")
        columns = browser.find_elements("css selector", ".column")
        assert columns[0].find_element("tag name", "h2").text.startswith("first stage")
        reranked = columns[1].find_elements("css selector", ".item")
        assert reranked[0].get_attribute("data-id") in RESET  # a reset passage first
        moves = [m.text for m in columns[1].find_elements("css selector", ".move")]
        assert any(m.startswith(("▲", "▼")) for m in moves)  # moves from the first stage are shown
        assert columns[1].find_elements("css selector", "mark")  # query terms highlighted
        assert " ms" in columns[1].find_element("tag name", "h2").text  # per-stage latency
        browser.save_screenshot(str(ARTIFACTS / "playground-search.png"))

        browser.find_element("id", "ask").click()
        answer = browser.find_element("id", "answer")
        wait_for(lambda: answer.is_displayed() and answer.find_elements("css selector", "#answer-text a"), "the answer")
        link = answer.find_element("css selector", "#answer-text a")
        assert link.text.startswith("[") and link.get_attribute("href").endswith("#source-" + link.text.strip("[]"))
        browser.save_screenshot(str(ARTIFACTS / "playground-ask.png"))
        foreign = [u for u in requested_urls(browser) if not u.startswith((url, "data:"))]
        assert foreign == []  # no request leaves the server: no CDN, no font, no analytics


def test_the_page_searches_a_served_index(default_reranker, tmp_path):
    from rerankit.retrieval import build_index

    build_index([{"_id": "a", "text": "Cats purr when they are content."},
                 {"_id": "b", "text": "Paris is the capital of France."},
                 {"_id": "c", "text": "Berlin is the capital of Germany."}], tmp_path / "index")
    config = ServerConfig(models=(ModelSpec("default", "default"),), index=str(tmp_path / "index"))
    with TestClient(create_app(config, rerankers={"default": default_reranker})) as client:
        assert client.get("/ui/api/config").json()["corpus"] == str(tmp_path / "index")
        found = client.post("/ui/api/search", json={"query": "capital of france", "candidates": 3, "k": 1}).json()
        assert {h["id"] for h in found["first_stage"]["hits"]} <= {"a", "b", "c"}
        assert found["rerankers"][0]["results"][0]["id"] == "b"
    assert ServerConfig.from_json(config.to_json()).index == str(tmp_path / "index")  # uvicorn workers get it too
