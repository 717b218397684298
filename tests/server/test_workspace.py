"""Workspace symbols from a background index (issue 14, item 2) and positions in the
agreed encoding (item 5), through a raw client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from .lsp_helpers import RawClient, new_uri


@pytest.fixture
async def raw() -> AsyncIterator[RawClient]:
    client = await RawClient.start()
    yield client
    await client.kill()


async def symbols(raw: RawClient, query: str) -> list[tuple[str, str]]:
    answer = await raw.request("workspace/symbol", {"query": query})
    assert "result" in answer, answer
    return sorted((s["name"], s["location"]["uri"]) for s in answer["result"])


def tricky_workspace(root: Path) -> Path:
    (root / "good.qvr").write_text("object GoodThing : FinSet 2\n")
    os.mkfifo(root / "pipe.qvr")  # reading it would block until someone writes
    (root / "loop").mkdir()
    (root / "loop" / "again").symlink_to(root, target_is_directory=True)  # a link loop
    (root / "node_modules").mkdir()
    (root / "node_modules" / "ignored.qvr").write_text("object IgnoredThing : FinSet 2\n")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "secret.qvr").write_text("object HiddenThing : FinSet 2\n")
    return root


async def test_symbols_skip_fifos_links_and_ignored_trees(raw: RawClient, tmp_path: Path) -> None:
    root = tricky_workspace(tmp_path)
    await raw.initialize(root, warm_worker=False)
    found = await symbols(raw, "Thing")
    assert found == [("GoodThing", (root / "good.qvr").as_uri())]
    # a request on the FIFO's uri is refused without opening it
    answer = await raw.request(
        "textDocument/hover",
        {
            "textDocument": {"uri": (root / "pipe.qvr").as_uri()},
            "position": {"line": 0, "character": 0},
        },
    )
    assert answer["error"]["code"] == -32602


async def test_a_root_of_slash_is_answered(raw: RawClient) -> None:
    await raw.initialize(Path("/"), warm_worker=False)
    uri = new_uri("open")
    raw.open(uri, "object OpenedHere : FinSet 2\n")
    await raw.diagnostics(uri, 1)
    # answered from what is indexed so far (the walk is capped and in the background)
    assert ("OpenedHere", uri) in await symbols(raw, "OpenedHere")
    hover = await raw.request(
        "textDocument/hover",
        {"textDocument": {"uri": uri}, "position": {"line": 0, "character": 8}},
    )
    assert "result" in hover


async def test_directories_vanishing_mid_scan(raw: RawClient, tmp_path: Path) -> None:
    (tmp_path / "kept.qvr").write_text("object KeptThing : FinSet 2\n")
    await raw.initialize(tmp_path, warm_worker=False)
    stop = threading.Event()

    def churn() -> None:  # a build directory being written and wiped
        n = 0
        while not stop.is_set():
            build = tmp_path / f"build{n % 3}"
            with contextlib.suppress(OSError):
                for i in range(20):
                    (build / f"d{i}").mkdir(parents=True, exist_ok=True)
                    (build / f"d{i}" / "gen.qvr").write_text(f"object Gen{i} : FinSet 2\n")
                shutil.rmtree(build, ignore_errors=True)
            n += 1

    thread = threading.Thread(target=churn)
    thread.start()
    try:
        for _ in range(10):
            assert ("KeptThing", (tmp_path / "kept.qvr").as_uri()) in await symbols(raw, "Kept")
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        thread.join()


async def test_only_utf16_is_agreed_and_used(raw: RawClient) -> None:
    answer = await raw.request(
        "initialize",
        {
            "processId": None,
            "rootUri": None,
            "capabilities": {"general": {"positionEncodings": ["utf-8", "utf-32", "utf-16"]}},
        },
    )
    assert answer["result"]["capabilities"]["positionEncoding"] == "utf-16"
    raw.notify("initialized", {})
    uri = new_uri("astral")
    # '𝔘' is 4 bytes in UTF-8, 2 units in UTF-16 and 1 code point: the error after two
    # of them is at code point 23, UTF-16 column 25 (UTF-8 would say 29)
    text = "#{𝔘𝔘}# object B : FinSet\nobject A : FinSet 2\n"
    raw.open(uri, text)
    published = await raw.diagnostics(uri, 1)
    (diagnostic,) = published["params"]["diagnostics"]
    assert diagnostic["range"]["start"] == {"line": 0, "character": 25}
    # and requests read UTF-16 columns: 'B' is at UTF-16 column 16 (code point 14)
    hover = await raw.request(
        "textDocument/hover",
        {"textDocument": {"uri": uri}, "position": {"line": 0, "character": 16}},
    )
    assert "object B" in hover["result"]["contents"]["value"]


async def test_a_lone_surrogate_does_not_stop_diagnostics(raw: RawClient) -> None:
    await raw.initialize(warm_worker=False)
    uri = new_uri("surrogate")
    body = (
        (
            '{"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument":'
            ' {"uri": "%s", "languageId": "qvr", "version": 1,'
            ' "text": "#! a \\ud800 b\\nobject A : FinSet\\nobject B : \\ud800\\n"}}}'
        )
        .replace("%s", uri)
        .encode()
    )
    raw.send_bytes(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    published = await raw.diagnostics(uri, 1)
    assert published["params"]["diagnostics"], "no diagnostics for a text with a lone surrogate"
    for line, character in [(0, 6), (2, 11), (2, 12)]:
        answer = await raw.request(
            "textDocument/hover",
            {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}},
        )
        assert "result" in answer, answer
