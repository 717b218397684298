"""Language-server latency through a real server process over stdio.

Starts ``python -m quivers_lsp`` with pygls' client, opens generated files of 1,000 and
5,000 lines, and reports p50/p95 of:

- start: process spawn to the initialize result (and torch must not be loaded in the
  server process: checked in ``/proc/<pid>/maps``, also after runs);
- keystroke: a one-character didChange to the publishDiagnostics of that version
  (the analysis included), alternating edits in a doc comment, a step and a type;
- hover, completion, semantic tokens (full, and delta as VS Code asks after an edit;
  asked once the edit's diagnostics are published, so the analysis is not included);
- hover while a NUTS run is in progress in the worker;
- run command to its first progress report, with a warm worker;
- stalls: hover on a small document while a 20,000-line document opens and while it is
  typed into (a key every 80 ms), and keystroke to diagnostics on 20,000 lines.

Targets (docs/benchmarks.md, "Language server"): keystroke p95 <= 100 ms; hover p50
<= 20 ms and p95 <= 50 ms (also during NUTS); completion p50 <= 16 ms; semantic
tokens <= 50 ms; start <= 1 s; first progress <= 250 ms; on 20,000 lines, hover on
another document p95 <= 50 ms while typing and keystroke to diagnostics p95 <= 1 s.
Run: ``python benchmarks/bench_server.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = (ROOT / "docs" / "examples" / "source" / "vanilla_rnn_lm.qvr").read_text()
SERVER = [sys.executable, "-m", "quivers_lsp"]
TARGETS_MS = {
    "start": ("p95", 1000.0),
    "keystroke": ("p95", 100.0),
    "hover": ("p50", 20.0),
    "hover p95": ("p95", 50.0),
    "completion": ("p50", 16.0),
    "semantic tokens": ("p95", 50.0),
    "first progress": ("p95", 250.0),
    "keystroke 20k": ("p95", 1000.0),
}

CAPABILITIES = {
    "textDocument": {
        "completion": {
            "completionItem": {"snippetSupport": True, "documentationFormat": ["markdown"]}
        },
        "hover": {"contentFormat": ["markdown"]},
        "publishDiagnostics": {"versionSupport": True},
        "semanticTokens": {
            "requests": {"full": {"delta": True}, "range": True},
            "tokenTypes": [],
            "tokenModifiers": [],
            "formats": ["relative"],
        },
    },
    "window": {"workDoneProgress": True},
}


# ------------------------------------------------------------------ the input


def block(i: int) -> list[str]:
    """One small sequence model of 13 lines; every name ends in i."""
    return [
        f"object T{i} : FinSet 16",
        f"object E{i} : Real 8",
        f"object H{i} : Real 8",
        f"#! The recurrent cell of block {i}.",
        f"morphism emb{i} : T{i} -> E{i} [role=embed]",
        f"morphism cell{i} : E{i} * H{i} -> H{i} [role=kernel, scale=0.1] ~ Normal",
        f"morphism head{i} : H{i} -> T{i} [role=kernel] ~ Categorical",
        f"let bb{i} = emb{i} >> scan(cell{i})",
        f"program p{i} : T{i} -> T{i}",
        f"    sample h <- bb{i}",
        f"    observe y : T{i} <- head{i}(h)",
        "    return y",
        "",
    ]


def generate(lines: int) -> str:
    out: list[str] = []
    i = 0
    while len(out) < lines - 1:
        out += block(i)
        i += 1
    return "\n".join([*out[: lines - 1], "export p0"]) + "\n"


# ------------------------------------------------------------------ the client


class Rpc:
    """A minimal JSON-RPC client over the server's stdio: plain dicts, no type
    conversion, so the timings are the server's (plus the pipe), not a client
    library's."""

    def __init__(self) -> None:
        self.process: asyncio.subprocess.Process | None = None
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.handlers: dict[str, Any] = {}
        self.next_id = 0
        self.reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *SERVER,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=2**26,
        )
        self.reader = asyncio.create_task(self._read())

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    async def request(self, method: str, params: Any) -> Any:
        self.next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        self._send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        return await asyncio.wait_for(future, 120)

    def notify(self, method: str, params: Any) -> None:
        self._send({"jsonrpc": "2.0", "method": method, "params": params})

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        stdout = self.process.stdout
        while True:
            length = 0
            while True:
                header = await stdout.readline()
                if not header:
                    return
                if header in (b"\r\n", b"\n"):
                    break
                if header.lower().startswith(b"content-length:"):
                    length = int(header.split(b":")[1])
            message = json.loads(await stdout.readexactly(length))
            now = time.perf_counter()
            if "method" in message:
                handler = self.handlers.get(message["method"])
                if handler is not None:
                    handler(message.get("params"), now)
                if "id" in message:  # a request from the server (progress create)
                    self._send({"jsonrpc": "2.0", "id": message["id"], "result": None})
            elif message.get("id") in self.pending:
                future = self.pending.pop(message["id"])
                if "error" in message:
                    future.set_exception(RuntimeError(message["error"]))
                else:
                    future.set_result(message.get("result"))


def position(line: int, character: int) -> dict[str, int]:
    return {"line": line, "character": character}


class Bench:
    def __init__(self) -> None:
        self.rpc = Rpc()
        self.waiters: dict[tuple[str, int], asyncio.Future[float]] = {}
        self.progress: list[tuple[float, Any]] = []
        self.progress_event = asyncio.Event()
        self.rpc.handlers["textDocument/publishDiagnostics"] = self._on_diagnostics
        self.rpc.handlers["$/progress"] = self._on_progress

    def _on_diagnostics(self, params: dict[str, Any], now: float) -> None:
        future = self.waiters.pop((params["uri"], params.get("version") or 0), None)
        if future is not None and not future.done():
            future.set_result(now)

    def _on_progress(self, params: dict[str, Any], now: float) -> None:
        self.progress.append((now, params))
        self.progress_event.set()

    async def start(self) -> float:
        began = time.perf_counter()
        await self.rpc.start()
        await self.rpc.request(
            "initialize",
            {"processId": os.getpid(), "rootUri": None, "capabilities": CAPABILITIES},
        )
        elapsed = time.perf_counter() - began
        self.rpc.notify("initialized", {})
        return elapsed

    @property
    def pid(self) -> int:
        assert self.rpc.process is not None
        return self.rpc.process.pid

    def torch_loaded(self) -> bool:
        maps = Path(f"/proc/{self.pid}/maps").read_text()
        return "libtorch" in maps or "/torch/" in maps

    async def stop(self) -> None:
        await self.rpc.request("shutdown", None)
        self.rpc.notify("exit", None)
        assert self.rpc.process is not None
        await asyncio.wait_for(self.rpc.process.wait(), 10)

    def expect(self, uri: str, version: int) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters[(uri, version)] = future
        return future

    async def open(self, uri: str, text: str) -> None:
        waiter = self.expect(uri, 1)
        self.rpc.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "qvr", "version": 1, "text": text}},
        )
        await asyncio.wait_for(waiter, 60)

    async def keystroke(self, uri: str, version: int, line: int, col: int, char: str) -> float:
        waiter = self.expect(uri, version)
        began = time.perf_counter()
        self.send_key(uri, version, line, col, char)
        return (await asyncio.wait_for(waiter, 60)) - began

    def send_key(self, uri: str, version: int, line: int, col: int, char: str) -> None:
        """Send a one-character edit without waiting for its diagnostics."""
        self.rpc.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [
                    {
                        "range": {"start": position(line, col), "end": position(line, col)},
                        "text": char,
                    }
                ],
            },
        )

    async def command(self, command: str, *arguments: Any) -> Any:
        return await self.rpc.request(
            "workspace/executeCommand", {"command": command, "arguments": list(arguments)}
        )

    async def at(self, method: str, uri: str, line: int, character: int) -> Any:
        return await self.rpc.request(
            method, {"textDocument": {"uri": uri}, "position": position(line, character)}
        )


async def timed(coro: Any) -> float:
    began = time.perf_counter()
    await coro
    return time.perf_counter() - began


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def report(name: str, values: list[float], target: str | None = None) -> dict[str, float]:
    p50, p95 = pct(values, 0.5), pct(values, 0.95)
    line = f"  {name:<34} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms   (n={len(values)})"
    if target:
        kind, limit = TARGETS_MS[target]
        got = p50 if kind == "p50" else p95
        verdict = "ok" if got <= limit else "MISSED"
        line += f"   target {kind} <= {limit:.0f} ms: {verdict}"
    print(line)
    return {"p50": p50, "p95": p95}


# ------------------------------------------------------------------ scenarios


async def bench_file(lines: int, rounds: int, rng: random.Random) -> None:
    bench = Bench()
    await bench.start()
    await asyncio.sleep(3)  # let the run worker finish importing torch (it competes for CPU)
    text = generate(lines)
    uri = f"file:///bench/generated_{lines}.qvr"
    await bench.open(uri, text)
    blocks = lines // 13
    print(f"{lines}-line file")

    # keystrokes: a doc comment, a program step and an object's size, in turn
    keys = []
    version = 1
    cpu_before = cpu_seconds(bench.pid)
    for k in range(rounds):
        b = rng.randrange(1, blocks - 1)
        where = k % 3
        if where == 0:
            line, col, char = 13 * b + 3, 11, "x"  # '#! The recurrent cell ...'
        elif where == 1:
            line, col, char = 13 * b + 11, 12, "y"  # '    return y' -> 'return yy' (an error)
        else:
            line, col, char = 13 * b + 1, 18, "1"  # 'Real 8' -> 'Real 81'
        version += 1
        keys.append(await bench.keystroke(uri, version, line, col, char))
    report("keystroke -> diagnostics", keys, "keystroke")
    cpu_keys = (cpu_seconds(bench.pid) - cpu_before) / rounds * 1000
    print(f"    (server CPU per keystroke, mean: {cpu_keys:.1f} ms)")

    hovers, completions, tokens = [], [], []
    for _ in range(rounds):
        b = rng.randrange(blocks - 1)
        line, col = rng.choice(
            [
                (13 * b + 7, 14),  # emb in 'let bb = emb >> scan(cell)'
                (13 * b + 7, 30),  # scan(cell)
                (13 * b + 10, 13),  # the observed site
                (13 * b + 5, 10),  # a morphism's name
            ]
        )
        hovers.append(await timed(bench.at("textDocument/hover", uri, line, col)))
        completions.append(await timed(bench.at("textDocument/completion", uri, 13 * b + 10, 25)))
    report("hover", hovers, "hover")
    report("completion", completions, "completion")
    # the first request on a file computes every statement's tokens (editors ask on open)
    began = time.perf_counter()
    await bench.rpc.request("textDocument/semanticTokens/full", {"textDocument": {"uri": uri}})
    print(
        f"  semantic tokens (full, first request)   {(time.perf_counter() - began) * 1000:.1f} ms"
    )
    previous = None
    deltas = []
    cpu_full = cpu_delta = 0.0
    for k in range(max(5, rounds // 4)):
        # after an edit, once its diagnostics are published (keystroke() waits for them):
        # the first token request on the new version, timing the token work, not the analysis
        version += 1
        await bench.keystroke(uri, version, 13 * (1 + k % (blocks - 2)) + 3, 11, "z")
        began, cpu = time.perf_counter(), cpu_seconds(bench.pid)
        full = await bench.rpc.request(
            "textDocument/semanticTokens/full", {"textDocument": {"uri": uri}}
        )
        tokens.append(time.perf_counter() - began)
        cpu_full += cpu_seconds(bench.pid) - cpu
        previous = full["resultId"]
        # the same through a delta (what VS Code asks for after an edit)
        version += 1
        await bench.keystroke(uri, version, 13 * (1 + k % (blocks - 2)) + 3, 12, "w")
        began, cpu = time.perf_counter(), cpu_seconds(bench.pid)
        delta = await bench.rpc.request(
            "textDocument/semanticTokens/full/delta",
            {"textDocument": {"uri": uri}, "previousResultId": previous},
        )
        deltas.append(time.perf_counter() - began)
        cpu_delta += cpu_seconds(bench.pid) - cpu
        assert "edits" in delta, "the server answered a delta request in full"
    report("semantic tokens (full, after an edit)", tokens, "semantic tokens")
    report("semantic tokens (delta, after an edit)", deltas, "semantic tokens")
    print(
        f"    (server CPU per request, mean: full {cpu_full / len(tokens) * 1000:.1f} ms,"
        f" delta {cpu_delta / len(deltas) * 1000:.1f} ms)"
    )
    assert not bench.torch_loaded(), "torch is loaded in the server process"
    await bench.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (load-independent, unlike wall time)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench_start(rounds: int) -> None:
    starts, cpu = [], []
    for _ in range(rounds):
        bench = Bench()
        starts.append(await bench.start())
        cpu.append(cpu_seconds(bench.pid))
        assert not bench.torch_loaded(), "torch is loaded in the server process"
        await bench.stop()
    report("start -> initialize result", starts, "start")
    report("  (server CPU time until then)", cpu, "start")
    print("  torch in the server process after start: no")


def reports_since(bench: Bench, mark: int, prefix: str = "") -> list[float]:
    return [
        t
        for t, p in bench.progress[mark:]
        if p["value"].get("kind") == "report"
        and str(p["value"].get("message", "")).startswith(prefix)
    ]


async def wait_for_report(bench: Bench, mark: int, prefix: str = "") -> float:
    while True:
        found = reports_since(bench, mark, prefix)
        if found:
            return found[0]
        bench.progress_event.clear()
        await asyncio.wait_for(bench.progress_event.wait(), 120)


async def bench_runs(rounds: int, rng: random.Random) -> None:
    bench = Bench()
    await bench.start()
    uri = "file:///bench/reference.qvr"
    await bench.open(uri, REFERENCE)
    await bench.command("qvr.sample", uri, {"n": 2})  # waits for the worker to be warm
    firsts = []
    for _ in range(rounds):
        mark = len(bench.progress)
        began = time.perf_counter()
        run = asyncio.ensure_future(
            bench.command("qvr.fitSvi", uri, {"steps": 3, "batch": 2, "length": 3})
        )
        firsts.append(await wait_for_report(bench, mark) - began)
        await asyncio.wait_for(run, 120)
    report("run command -> first progress", firsts, "first progress")

    # hover while NUTS runs in the worker
    mark = len(bench.progress)
    nuts = asyncio.ensure_future(
        bench.command("qvr.runNuts", uri, {"warmup": 100000, "samples": 10, "batch": 4})
    )
    await wait_for_report(bench, mark, "warmup")
    hovers = []
    for _ in range(rounds * 4):  # spread over the run, as a user would hover
        line, col = rng.choice([(6, 30), (4, 10), (9, 36)])
        hovers.append(await timed(bench.at("textDocument/hover", uri, line, col)))
        await asyncio.sleep(0.025)
    during = len(reports_since(bench, mark, "warmup"))
    report("hover during NUTS", hovers, "hover")
    report("hover during NUTS (p95 target)", hovers, "hover p95")
    print(f"  (NUTS warmup reports received meanwhile: {during})")
    assert await bench.command("qvr.cancelRun") == {"cancelled": True}
    result = await asyncio.wait_for(nuts, 30)
    assert result["cancelled"] is True, result
    assert not bench.torch_loaded(), "torch is loaded in the server process after runs"
    print("  torch in the server process after runs: no")
    await bench.stop()


async def bench_stall(keys: int, rng: random.Random) -> None:
    """Item 1 of issue 14: a 20,000-line document must not stall requests on others."""
    lines = 20_000
    bench = Bench()
    await bench.start()
    await asyncio.sleep(3)  # let the run worker finish importing torch
    small = "file:///bench/small.qvr"
    await bench.open(small, REFERENCE)
    big = f"file:///bench/stall_{lines}.qvr"
    blocks = lines // 13
    print(f"stalls: a small document beside a {lines}-line one")

    async def hover_small() -> float:
        line, col = rng.choice([(6, 30), (4, 10), (9, 36)])
        return await timed(bench.at("textDocument/hover", small, line, col))

    async def hover_while(task: asyncio.Future[Any]) -> list[float]:
        out = []
        while not task.done():
            out.append(await hover_small())
            await asyncio.sleep(0.02)  # a user hovering, not a flood
        return out

    began = time.perf_counter()
    opening = asyncio.ensure_future(bench.open(big, generate(lines)))
    during_open = await hover_while(opening)
    await opening
    print(f"  open {lines} lines -> first diagnostics    {time.perf_counter() - began:.2f} s")
    report(f"hover (small) while {lines:,} lines open", during_open or [0.0])

    def key(k: int) -> tuple[int, int, str]:
        """A doc comment, a program step (an error) and an object's size, in turn."""
        b = rng.randrange(1, blocks - 1)
        return [(13 * b + 3, 11, "x"), (13 * b + 11, 12, "y"), (13 * b + 1, 18, "1")][k % 3]

    version = 1
    strokes = []
    for k in range(max(6, keys // 2)):
        version += 1
        strokes.append(await bench.keystroke(big, version, *key(k)))
    report(f"keystroke -> diagnostics, {lines:,} lines", strokes, "keystroke 20k")

    async def typing(first: int) -> None:
        v = first
        for k in range(keys):
            v += 1
            bench.send_key(big, v, *key(k))
            await asyncio.sleep(0.08)  # a fast typist
        await asyncio.wait_for(bench.expect(big, v), 120)

    typed = asyncio.ensure_future(typing(version))
    hovers = await hover_while(typed)
    await typed
    version += keys
    report(f"hover (small) while typing {lines:,} lines", hovers, "hover p95")
    await bench.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--stall", action="store_true", help="only the 20,000-line stalls")
    args = parser.parse_args()
    rounds = 30 if args.quick else 120
    rng = random.Random(7)
    load = os.getloadavg()[0]
    print(
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs,"
        f" load average {load:.1f}"
    )
    if args.stall:
        await bench_stall(25 if args.quick else 60, rng)
        return
    await bench_start(5 if args.quick else 15)
    for lines in (1000, 5000):
        await bench_file(lines, rounds, rng)
    print("runs (reference program)")
    await bench_runs(5 if args.quick else 15, rng)
    await bench_stall(25 if args.quick else 60, rng)


if __name__ == "__main__":
    asyncio.run(main())
