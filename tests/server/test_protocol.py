"""The JSON-RPC layer through a raw client (issue 14, items 3, 4 and 9): broken frames
do not silence the server, every request gets exactly one answer with the right error
code, and the lifecycle (initialize once, shutdown, exit) is enforced."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from .lsp_helpers import REFERENCE, RawClient, new_uri, pos

HOVER_AT = pos(REFERENCE, "cell", 1, 1)


@pytest.fixture
async def raw() -> AsyncIterator[RawClient]:
    client = await RawClient.start()
    yield client
    await client.kill()


async def ready(raw: RawClient) -> str:
    """Initialize, open the reference program and wait for its diagnostics."""
    answer = await raw.initialize(warm_worker=False)
    assert "result" in answer, answer
    uri = new_uri("raw")
    raw.open(uri, REFERENCE)
    await raw.diagnostics(uri, 1)
    return uri


def hover(uri: str, line: int = HOVER_AT.line, character: int = HOVER_AT.character) -> dict:  # type: ignore[type-arg]
    return {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}


def error_code(answer: dict) -> int:  # type: ignore[type-arg]
    assert "error" in answer and "result" not in answer, answer
    message = answer["error"]["message"]
    assert message and "\n" not in message and "Traceback" not in message, message
    assert "traceback" not in json.dumps(answer["error"].get("data")).lower()
    return int(answer["error"]["code"])


def body(message: dict) -> bytes:  # type: ignore[type-arg]
    return json.dumps(message).encode()


# ------------------------------------------------------------ item 3: frames


@pytest.mark.parametrize(
    "frame",
    [
        "length too large",
        "length too small",
        "no header",
        "no blank line",
        "garbage",
    ],
)
async def test_a_broken_frame_does_not_silence_the_server(raw: RawClient, frame: str) -> None:
    uri = await ready(raw)
    broken_id = raw.request_id()
    data = body(
        {"jsonrpc": "2.0", "id": broken_id, "method": "textDocument/hover", "params": hover(uri)}
    )
    raw.send_bytes(
        {
            "length too large": b"Content-Length: %d\r\n\r\n" % (len(data) + 40) + data,
            "length too small": b"Content-Length: %d\r\n\r\n" % (len(data) - 5) + data,
            "no header": data,
            "no blank line": b"Content-Length: %d\r\n" % len(data) + data,
            "garbage": b"\x00\xffnot a frame at all\r\n\r\n",
        }[frame]
    )
    # the next well-formed request is answered at once, no CRLF needed first
    answer = await raw.request("textDocument/hover", hover(uri))
    assert "Embedded * Hidden -> Hidden" in answer["result"]["contents"]["value"]
    if frame == "length too large":  # its body ended where the next header began
        assert "result" in raw.responses(broken_id)[0]
    if frame == "length too small":  # a cut body is malformed JSON: -32700
        parse_errors = [m for m in raw.messages if m.get("error", {}).get("code") == -32700]
        assert len(parse_errors) == 1 and parse_errors[0]["id"] is None


@pytest.mark.parametrize("style", ["lowercase header", "LF line ends", "extra header field"])
async def test_lenient_headers_are_understood(raw: RawClient, style: str) -> None:
    uri = await ready(raw)
    msg_id = raw.request_id()
    data = body(
        {"jsonrpc": "2.0", "id": msg_id, "method": "textDocument/hover", "params": hover(uri)}
    )
    raw.send_bytes(
        {
            "lowercase header": b"content-length: %d\r\n\r\n" % len(data),
            "LF line ends": b"Content-Length: %d\n\n" % len(data),
            "extra header field": b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n"
            b"Content-Length: %d\r\n\r\n" % len(data),
        }[style]
        + data
    )
    answer = await raw.response(msg_id)
    assert "Embedded * Hidden -> Hidden" in answer["result"]["contents"]["value"]


async def test_malformed_json_is_a_parse_error(raw: RawClient) -> None:
    await ready(raw)
    bad = b'{"jsonrpc": "2.0", "id": 5, "method": '
    raw.send_bytes(b"Content-Length: %d\r\n\r\n" % len(bad) + bad)
    answer = await raw.wait(lambda m: "error" in m)
    assert error_code(answer) == -32700 and answer["id"] is None
    for not_a_message in ([1, 2], 3, {"id": 9, "method": "x"}):
        raw.send(not_a_message)  # type: ignore[arg-type]
    assert error_code(await raw.response(9)) == -32600
    assert (await raw.request("shutdown"))["result"] is None


# ------------------------------------------------- item 4: one answer each


async def test_every_request_gets_exactly_one_answer(raw: RawClient) -> None:
    uri = await ready(raw)
    cases = {
        "negative line": ("textDocument/hover", hover(uri, -1, 0), False, -32602),
        "negative column": ("textDocument/hover", hover(uri, 0, -3), False, -32602),
        "line 2**31": ("textDocument/hover", hover(uri, 2**31, 0), False, -32602),
        "column not a number": ("textDocument/hover", hover(uri, 0, "x"), False, -32602),  # type: ignore[arg-type]
        "no position": ("textDocument/hover", {"textDocument": {"uri": uri}}, False, -32602),
        "no params at all": ("textDocument/hover", None, True, -32602),
        "unknown method, no params": ("qvr/noSuchThing", None, True, -32601),
        "unknown method": ("qvr/noSuchThing", {"a": 1}, False, -32601),
        "closed document": ("textDocument/hover", hover(new_uri("never-opened")), False, -32602),
    }
    ids = {name: raw.send_request(m, p, omit) for name, (m, p, omit, _) in cases.items()}
    chart = raw.send_request("qvr/flowchart", None)  # null params: an answer, not silence
    last = await raw.request("textDocument/hover", hover(uri))
    assert "result" in last
    for name, (_, _, _, code) in cases.items():
        answers = raw.responses(ids[name])
        assert len(answers) == 1, (name, answers)
        assert error_code(answers[0]) == code, name
    (chart_answer,) = raw.responses(chart)
    assert chart_answer["result"]["error"] == "qvr/flowchart needs a document uri"
    # after shutdown: every request is refused, once
    assert (await raw.request("shutdown"))["result"] is None
    late = [raw.send_request("textDocument/hover", hover(uri)), raw.send_request("shutdown")]
    for msg_id in late:
        assert error_code(await raw.response(msg_id)) == -32600
        assert len(raw.responses(msg_id)) == 1
    raw.notify("exit")
    assert await raw.process.wait() == 0


# ------------------------------------------------------- item 9: lifecycle


async def test_requests_before_initialize_are_not_initialized_errors(raw: RawClient) -> None:
    answer = await raw.request("textDocument/hover", hover(new_uri()))
    assert error_code(answer) == -32002
    assert error_code(await raw.request("shutdown")) == -32002
    await ready(raw)  # and initialize still works after them


async def test_second_initialize_is_refused_and_keeps_documents(raw: RawClient) -> None:
    uri = await ready(raw)
    again = await raw.request(
        "initialize", {"processId": None, "rootUri": None, "capabilities": {}}
    )
    assert error_code(again) == -32600
    answer = await raw.request("textDocument/hover", hover(uri))
    assert "Embedded * Hidden -> Hidden" in answer["result"]["contents"]["value"]


async def test_exit_without_shutdown_exits_with_1(raw: RawClient) -> None:
    await ready(raw)
    raw.notify("exit")
    assert await raw.process.wait() == 1


async def test_exit_after_shutdown_exits_with_0(raw: RawClient) -> None:
    await ready(raw)
    assert await raw.stop() == 0


async def test_refusals_are_one_line_errors(raw: RawClient) -> None:
    uri = await ready(raw)
    at = pos(REFERENCE, "morphism cell", offset=10)
    rename = await raw.request(
        "textDocument/rename",
        {
            "textDocument": {"uri": uri},
            "position": {"line": at.line, "character": at.character},
            "newName": "program",
        },
    )
    assert error_code(rename) == -32803 and "reserved" in rename["error"]["message"]
    raw.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    closed = await raw.request("textDocument/hover", hover(uri))
    assert error_code(closed) == -32602 and "not open" in closed["error"]["message"]
    chart = await raw.request("qvr/flowchart", {"uri": uri})
    assert error_code(chart) == -32602
