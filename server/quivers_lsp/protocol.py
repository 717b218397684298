"""Our JSON-RPC message handling on top of pygls: every request gets exactly one answer.

pygls 2.1's defaults, seen from a raw client, and what this layer does instead (each is
listed in docs/dev/editor-protocol.md, "Robustness"):

- malformed JSON got no answer: it gets -32700 (ParseError);
- a request with missing or invalid params (no ``position``, a negative or huge line)
  or without a ``params`` member got no answer: it gets -32602 (InvalidParams);
- an unknown method got -32601 only when it had params: now always;
- requests before ``initialize`` got -32603 with a traceback: they get -32002;
  a second ``initialize`` was accepted and dropped every open document: -32600;
- requests after ``shutdown`` were dropped silently: they get -32600;
- ``shutdown`` during a run failed ("dictionary changed size during iteration");
- ``exit`` without ``shutdown`` exited with code 0: it exits with 1, as LSP says;
- ``$/cancelRequest`` on a command cancelled only pygls' outer future: the command's
  task goes on, so a cancelled run kept the worker computing; commands are now run
  as one task that the cancel reaches;
- a handler's exception went out as -32603 with a traceback: one line, no traceback
  (the traceback goes to the log);
- ``NaN``/``Infinity`` went out as bare JSON tokens, which vscode-jsonrpc rejects: a
  non-finite number left in a result makes that request an error, never invalid JSON;
- the server agreed to UTF-8 or UTF-32 positions but computed UTF-16 everywhere
  except in ``didChange``: it now agrees to UTF-16 only (every client must accept it).
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Generator
from concurrent.futures import Future
from typing import Any

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException
from pygls.protocol import LanguageServerProtocol, lsp_method
from pygls.protocol.language_server import _prepare_command_arguments

from quivers_lsp.transport import Frame

logger = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_NOT_INITIALIZED = -32002
REQUEST_CANCELLED = -32800
REQUEST_FAILED = -32803
UINTEGER_MAX = 2**31 - 1


class RequestFailed(JsonRpcException):
    """LSP's RequestFailed: a well-formed request the server cannot honour."""

    CODE = REQUEST_FAILED
    MESSAGE = "Request failed"


class InvalidParams(JsonRpcException):
    CODE = INVALID_PARAMS
    MESSAGE = "Invalid params"


class QvrProtocol(LanguageServerProtocol):
    def __init__(self, server: Any, converter: Any) -> None:
        super().__init__(server, converter)
        self.initialize_received = False
        self.initialization_options: dict[str, Any] = {}
        self.exit_code: int | None = None
        self.on_exit: Callable[[], None] = lambda: None

    # ------------------------------------------------------------ receiving

    def receive(self, frame: Frame) -> None:
        """Handle one frame from the transport."""
        if frame.body is None:
            return  # bytes between messages: logged by the transport
        try:
            data = json.loads(frame.body)
        except (ValueError, RecursionError) as exc:
            self.reply_error(None, PARSE_ERROR, f"the message is not valid JSON: {exc}")
            return
        try:
            self._dispatch(data)
        except Exception:  # never let one message stop the reader
            logger.exception("failed to handle a message")
            msg_id = data.get("id") if isinstance(data, dict) else None
            if isinstance(data, dict) and "method" in data and _valid_id(msg_id):
                self.reply_error(msg_id, INTERNAL_ERROR, "the server failed on this message")

    def _dispatch(self, data: Any) -> None:
        if not isinstance(data, dict) or data.get("jsonrpc") != "2.0":
            msg_id = data.get("id") if isinstance(data, dict) else None
            self.reply_error(
                msg_id if _valid_id(msg_id) else None,
                INVALID_REQUEST,
                'a message must be a JSON object with "jsonrpc": "2.0"',
            )
            return
        method = data.get("method")
        has_id = "id" in data
        msg_id = data.get("id")
        if method is None:  # a response to one of our requests
            if has_id and ("result" in data or "error" in data):
                data.setdefault("result", None)
                self.handle_message(self.structure_message(data))
            else:
                self.reply_error(None, INVALID_REQUEST, "a message without a method")
            return
        if not isinstance(method, str) or (has_id and not _valid_id(msg_id)):
            if has_id:
                self.reply_error(
                    msg_id if _valid_id(msg_id) else None,
                    INVALID_REQUEST,
                    "the method must be a string and the id a number or a string",
                )
            return
        if method == lsp.EXIT:
            self._exit()
            return
        problem = self._lifecycle(method)
        if problem is not None:
            if has_id:
                self.reply_error(msg_id, *problem)
            else:
                logger.info("notification %s dropped: %s", method, problem[1])
            return
        if method == lsp.INITIALIZE:
            self.initialize_received = True
        known = method in self.fm.builtin_features or method in self.fm.features
        if not known and method != lsp.CANCEL_REQUEST:
            if has_id:
                self.reply_error(msg_id, METHOD_NOT_FOUND, f"unknown method {method!r}")
            elif not method.startswith("$/"):
                logger.info("ignoring the unknown notification %s", method)
            return
        data.setdefault("params", None)
        bad = _bad_position(data["params"])
        if bad is None:
            try:
                message = self.structure_message(data)
            except Exception as exc:
                cause = exc.__cause__ or exc
                bad = f"invalid params for {method}: {_one_line(cause)}"
        if bad is not None:
            if has_id:
                self.reply_error(msg_id, INVALID_PARAMS, bad)
            else:
                logger.warning("notification %s dropped: %s", method, bad)
            return
        self.handle_message(message)

    def _lifecycle(self, method: str) -> tuple[int, str] | None:
        """Why ``method`` may not be handled now (code, message), or None."""
        if self._shutdown:
            return INVALID_REQUEST, "the server is shutting down; only 'exit' is accepted"
        if not self.initialize_received:
            if method == lsp.INITIALIZE:
                return None
            return SERVER_NOT_INITIALIZED, "the server is not initialized yet"
        if method == lsp.INITIALIZE:
            return INVALID_REQUEST, "the server is already initialized"
        return None

    def _exit(self) -> None:
        self.exit_code = 0 if self._shutdown else 1
        self.on_exit()

    # -------------------------------------------------------------- sending

    def reply_error(self, msg_id: Any, code: int, message: str) -> None:
        self._send_data(
            {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}}
        )

    def _send_data(self, data: Any) -> None:
        if not data:
            return
        if self.writer is None:
            logger.error("no transport to send a message on")
            return
        try:
            body = json.dumps(data, default=self._serialize_message, allow_nan=False)
        except ValueError as exc:
            # NaN or Infinity left in a result: vscode-jsonrpc rejects bare NaN, so
            # answer this request with an error instead of sending invalid JSON
            logger.error("a message with a non-finite number was not sent: %s", exc)
            msg_id = getattr(data, "id", None)
            if msg_id is None and isinstance(data, dict):
                msg_id = data.get("id")
            if msg_id is None:
                return
            body = json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": msg_id,
                    "error": {
                        "code": INTERNAL_ERROR,
                        "message": "the result holds a non-finite number",
                    },
                }
            )
        encoded = body.encode("utf-8")
        header = (
            f"Content-Length: {len(encoded)}\r\n"
            f"Content-Type: {self.CONTENT_TYPE}; charset={self.CHARSET}\r\n\r\n"
        ).encode("ascii")
        try:
            self.writer.write(header + encoded)
        except (BrokenPipeError, ValueError, OSError):
            logger.warning("the client is gone; a message was not sent")

    def _send_handler_result(self, future: Future[Any], *, msg_id: Any) -> None:
        """One answer per request: a result, -32800 when cancelled, or a one-line error."""
        self._request_futures.pop(msg_id, None)
        if future.cancelled():
            self.reply_error(msg_id, REQUEST_CANCELLED, "the request was cancelled")
            return
        exc = future.exception()
        if exc is None:
            self._send_response(msg_id, result=future.result())
        elif isinstance(exc, JsonRpcException):
            self.reply_error(msg_id, exc.code, _one_line(exc.message))
        else:
            logger.error("request %s failed", msg_id, exc_info=exc)
            self.reply_error(msg_id, INTERNAL_ERROR, f"{type(exc).__name__}: {_one_line(exc)}")

    # ---------------------------------------------------- lifecycle handlers

    @lsp_method(lsp.INITIALIZE)
    def lsp_initialize(
        self, params: lsp.InitializeParams
    ) -> Generator[Any, Any, lsp.InitializeResult]:
        general = params.capabilities.general
        if general is not None:
            general.position_encodings = None  # UTF-16 only: see the module docstring
        options = params.initialization_options
        self.initialization_options = options if isinstance(options, dict) else {}
        return (yield from super().lsp_initialize(params))

    @lsp_method(lsp.WORKSPACE_EXECUTE_COMMAND)
    async def lsp_workspace__execute_command(  # type: ignore[override]
        self, params: lsp.ExecuteCommandParams
    ) -> Any:
        """A coroutine, unlike pygls' generator: then ``$/cancelRequest`` cancels the
        command's own task (pygls cancelled only an outer future, so a cancelled run
        went on computing in the worker)."""
        handler = self.fm.commands.get(params.command)
        if handler is None:
            raise InvalidParams(f"unknown command {params.command!r}")
        try:
            args, kwargs = _prepare_command_arguments(handler, params, self._converter)
        except Exception as exc:
            raise InvalidParams(f"bad arguments for {params.command}: {_one_line(exc)}") from exc
        result = handler(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    @lsp_method(lsp.SHUTDOWN)
    def lsp_shutdown(self, *args: Any) -> Generator[Any, Any, None]:
        if (user_handler := self.fm.features.get(lsp.SHUTDOWN)) is not None:
            yield user_handler, args, None
        current = self.msg_id
        # a copy: cancelling a future answers its request, which removes it from the dict
        for msg_id, future in list(self._request_futures.items()):
            if msg_id != current and not future.done():
                future.cancel()
        self._shutdown = True
        return None


def _valid_id(msg_id: Any) -> bool:
    return isinstance(msg_id, str) or (isinstance(msg_id, int) and not isinstance(msg_id, bool))


def _bad_position(value: Any, depth: int = 0) -> str | None:
    """A message about the first position in ``value`` outside LSP's uinteger range."""
    if depth > 8:
        return None
    if isinstance(value, dict):
        if "line" in value and "character" in value:
            for key in ("line", "character"):
                v = value[key]
                if type(v) is not int or not 0 <= v <= UINTEGER_MAX:
                    return f"position {key} {v!r} is not an integer from 0 to {UINTEGER_MAX}"
        for v in value.values():
            if isinstance(v, (dict, list)):
                found = _bad_position(v, depth + 1)
                if found is not None:
                    return found
    elif isinstance(value, list):
        for v in value[:10_000]:
            if isinstance(v, (dict, list)):
                found = _bad_position(v, depth + 1)
                if found is not None:
                    return found
    return None


def _one_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else type(value).__name__
