"""Soak (issue 14, "Must show"): half an hour of editor traffic compressed into a few
minutes against one server process: random edits on several documents, hovers and
completions, documents closed and reopened, runs started and cancelled (three ways),
the worker killed mid-run. At the end every request has exactly one answer, the
server's diagnostics match a local analysis of the client's text, its memory is
within 1.5x of what it was after warm-up, and after shutdown no process is left.
Marked slow (CI runs it separately)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from pathlib import Path
from typing import Any

import pytest

from .lsp_helpers import EXAMPLES, RawClient, alive, child_pids, rss_kib
from .test_robustness import expected_diagnostics, lsp_position, random_edit

pytestmark = pytest.mark.slow

SEED = 20261201
WARMUP_EVENTS = 300
EVENTS = 2000  # about 30 minutes of one person's editing, at about one event a second...
BATCH = 8  # ...sent a few at a time, as an editor does after a keystroke
RUN_EVERY = 300  # events between runs: each is started, then stopped one of four ways
CANCELS = ["command", "cancelRequest", "progress", "kill worker"]
FILES = ["vanilla_rnn_lm.qvr", "bayesian_linear_regression.qvr", "gaussian_mixture.qvr"]


def generated(blocks: int) -> str:
    out = []
    for i in range(blocks):
        out += [
            f"object T{i} : FinSet 4",
            f"morphism k{i} : T{i} -> T{i} [role=kernel] ~ Categorical",
            f"program p{i} : T{i} -> T{i}",
            f"    sample y <- k{i}",
            "    return y",
        ]
    return "\n".join([*out, "export p0"]) + "\n"


class Editor:
    """The client side: documents' texts and versions, requests in flight."""

    def __init__(self, raw: RawClient, rng: random.Random) -> None:
        self.raw = raw
        self.rng = rng
        self.texts: dict[str, str] = {}
        self.versions: dict[str, int] = {}
        self.sent: list[int] = []
        self.run: tuple[int, str] | None = None  # (request id, how it will be cancelled)

    def open(self, uri: str, text: str) -> None:
        self.texts[uri], self.versions[uri] = text, 1
        self.raw.open(uri, text)

    def request(self, method: str, params: Any) -> int:
        msg_id = self.raw.send_request(method, params)
        self.sent.append(msg_id)
        return msg_id

    def edit(self, uri: str) -> None:
        text = self.texts[uri]
        a, b, new = random_edit(self.rng, text)
        if len(text) - (b - a) + len(new) > 200_000:
            a, b, new = 0, len(text), generated(3)  # keep files editor-sized
        self.versions[uri] += 1
        self.raw.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri, "version": self.versions[uri]},
                "contentChanges": [
                    {
                        "range": {
                            "start": _pos(lsp_position(text, a)),
                            "end": _pos(lsp_position(text, b)),
                        },
                        "text": new,
                    }
                ],
            },
        )
        self.texts[uri] = text[:a] + new + text[b:]

    def query(self, uri: str) -> None:
        text = self.texts[uri]
        where = _pos(lsp_position(text, self.rng.randint(0, len(text))))
        method = self.rng.choice(
            ["textDocument/hover", "textDocument/completion", "textDocument/definition"]
        )
        self.request(method, {"textDocument": {"uri": uri}, "position": where})

    def start_run(self, uri: str, how: str) -> None:
        msg_id = self.request(
            "workspace/executeCommand",
            {"command": "qvr.fitSvi", "arguments": [uri, {"steps": 1_000_000, "length": 3}]},
        )
        self.run = (msg_id, how)

    async def stop_run(self, mark: int) -> None:
        assert self.run is not None
        msg_id, how = self.run
        self.run = None
        report = await self.raw.wait(
            lambda m: (
                m.get("method") == "$/progress"
                and m["params"]["value"].get("kind") in ("report", "end")
            ),
            timeout=120,
            start=mark,
        )
        if how == "command":
            self.request("workspace/executeCommand", {"command": "qvr.cancelRun", "arguments": []})
        elif how == "cancelRequest":
            self.raw.notify("$/cancelRequest", {"id": msg_id})
        elif how == "progress":
            self.raw.notify("window/workDoneProgress/cancel", {"token": report["params"]["token"]})
        else:
            workers = [p for p in child_pids(self.raw.pid) if alive(p) and not _tracker(p)]
            for pid in workers:
                os.kill(pid, signal.SIGKILL)
        answer = await self.raw.response(msg_id, timeout=60)
        assert len(self.raw.responses(msg_id)) == 1
        if "result" in answer:  # cancelled, failed (a broken buffer), or the worker died
            result = answer["result"]
            assert result["cancelled"] or not result["ok"], answer
        else:
            assert answer["error"]["code"] == -32800, answer

    async def settle(self) -> None:
        for msg_id in self.sent:
            await self.raw.response(msg_id, timeout=120)


def _pos(p: Any) -> dict[str, int]:
    return {"line": p.line, "character": p.character}


def _tracker(pid: int) -> bool:
    try:
        return b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True


async def traffic(editor: Editor, uris: list[str], events: int) -> None:
    rng = editor.rng
    for n in range(events):
        uri = rng.choice(uris)
        roll = rng.random()
        if n % RUN_EVERY == RUN_EVERY // 2:
            mark = len(editor.raw.messages)
            editor.start_run(uri, CANCELS[(n // RUN_EVERY) % len(CANCELS)])
            await editor.stop_run(mark)
        elif roll < 0.5:
            editor.edit(uri)
        elif roll < 0.95:
            editor.query(uri)
        else:
            editor.raw.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
            editor.open(uri, editor.texts[uri])
        if n % BATCH == BATCH - 1:
            await editor.settle()


async def test_soak() -> None:
    raw = await RawClient.start()
    try:
        await raw.initialize(EXAMPLES)
        editor = Editor(raw, random.Random(SEED))
        uris = []
        for i, name in enumerate(FILES):
            uri = f"file:///tmp/qvr-soak/{i}-{name}"
            editor.open(uri, (EXAMPLES / name).read_text())
            uris.append(uri)
        big = "file:///tmp/qvr-soak/generated.qvr"
        editor.open(big, generated(400))
        uris.append(big)
        await traffic(editor, uris, WARMUP_EVENTS)
        await editor.settle()
        warm = rss_kib(raw.pid)
        await traffic(editor, uris, EVENTS)
        await editor.settle()
        # every request answered exactly once
        for msg_id in editor.sent:
            assert len(raw.responses(msg_id)) == 1, msg_id
        # the server's text is the client's: its last diagnostics match a local analysis
        for uri in uris:
            editor.versions[uri] += 1
            mark = len(raw.messages)
            editor.raw.notify(
                "textDocument/didChange",
                {
                    "textDocument": {"uri": uri, "version": editor.versions[uri]},
                    "contentChanges": [{"text": editor.texts[uri]}],
                },
            )
            got = await raw.diagnostics(uri, editor.versions[uri], start=mark)
            published = [
                (
                    str(d["code"]),
                    (
                        d["range"]["start"]["line"],
                        d["range"]["start"]["character"],
                        d["range"]["end"]["line"],
                        d["range"]["end"]["character"],
                    ),
                )
                for d in got["params"]["diagnostics"]
            ]
            assert published == expected_diagnostics(editor.texts[uri]), uri
        end = rss_kib(raw.pid)
        assert end <= 1.5 * warm, f"server RSS {warm} kB after warm-up, {end} kB at the end"
        children = child_pids(raw.pid)
        assert await raw.stop() == 0
        for _ in range(200):
            if not any(alive(p) for p in children):
                break
            await asyncio.sleep(0.05)
        assert not [p for p in children if alive(p)], "processes left behind"
    finally:
        await raw.kill()
