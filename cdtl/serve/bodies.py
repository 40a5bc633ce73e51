"""Request bodies before FastAPI sees them: the size limit, then UTF-8 and JSON checked with errors that say where.

``RequestBody`` is a pure ASGI middleware. It reads a request's body up to ``limit``
bytes, whether the client declared its length or sent it in chunks, and answers 413 for
anything longer (it reads and drops up to ``DRAIN_LIMIT`` bytes first, so the client can
read the answer). A non-empty body is then checked once: valid UTF-8 (else a 400 with
the byte offset), valid JSON (else a 400 with line and column), nested at most
``MAX_DEPTH`` levels, no lone UTF-16 surrogate escape. Every endpoint takes JSON, so a
body that parses is passed on as ``application/json`` whatever its content type said:
``curl -d '{...}'`` (which sends a form content type) works as written.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi.responses import JSONResponse

DRAIN_LIMIT = 64 * 1024 * 1024  # an over-size body up to this size is read and dropped before the 413
MAX_DEPTH = 32  # nesting levels of a JSON body (the service's own bodies need 2)
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def error_response(status: int, field: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The service's error body: ``detail`` starts with the field at fault; ``errors`` lists ``{field, message}``."""
    return JSONResponse({"detail": f"{field}: {message}", "errors": [{"field": field, "message": message}]},
                        status_code=status, headers=headers)


class BodyError(ValueError):
    """A body that is not what the service reads; ``status`` 400 or 413."""

    def __init__(self, message: str, status: int = 400, field: str = "body") -> None:
        super().__init__(f"{field}: {message}")
        self.message, self.status, self.field = message, status, field


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, level)
            if deepest > MAX_DEPTH:
                return deepest
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _lone_surrogate(value: Any) -> str | None:
    """The path of the first string holding a lone surrogate (it cannot be written as UTF-8), or None."""
    stack: list[tuple[Any, str]] = [(value, "body")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return path
        elif isinstance(node, dict):
            stack.extend((v, f"{path}.{k}" if path != "body" else str(k)) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{n}]") for n, v in enumerate(node))
    return None


def check_json(data: bytes) -> Any:
    """The parsed body, or ``BodyError`` saying where it failed."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BodyError(f"invalid UTF-8 at byte {err.start} (JSON bodies are UTF-8)") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise BodyError(f"malformed JSON at line {err.lineno}, column {err.colno}: {err.msg}") from None
    except RecursionError:
        raise BodyError(f"JSON nested deeper than the limit of {MAX_DEPTH} levels") from None
    if data.count(b"[") + data.count(b"{") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise BodyError(f"JSON nested deeper than the limit of {MAX_DEPTH} levels")
    if _SURROGATE.search(data):
        where = _lone_surrogate(value)
        if where is not None:
            raise BodyError("holds a lone UTF-16 surrogate escape (\\ud800 to \\udfff alone is not a character)", field=where)
    return value


class RequestBody:
    """Pure ASGI middleware: size limit (413), then UTF-8 and JSON checks (400) of every request body; see the module."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read(scope, receive)
            if body:
                check_json(body)
        except BodyError as err:
            await error_response(err.status, err.field, err.message)(scope, receive, send)
            return
        if body:
            headers = [(k, v) for k, v in scope.get("headers", []) if k not in (b"content-type", b"content-length")]
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            scope = {**scope, "headers": headers}
        sent = {"done": False}

        async def replay() -> dict:
            if not sent["done"]:
                sent["done"] = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as the server would say it

        await self.app(scope, replay, send)

    async def _read(self, scope: dict, receive: Any) -> bytes:
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            if declared.isdigit() and int(declared) <= DRAIN_LIMIT:
                await self._drain(receive, 0)
            shown = declared.decode(errors="replace")[:40]
            raise BodyError(f"{shown} bytes is over the limit of {self.limit} bytes", 413)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                if message.get("more_body", False):
                    await self._drain(receive, size)
                raise BodyError(f"over the limit of {self.limit} bytes (sent in chunks)", 413)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    @staticmethod
    async def _drain(receive: Any, size: int) -> None:
        """Read and drop the rest of a body, up to ``DRAIN_LIMIT`` bytes in all."""
        while size <= DRAIN_LIMIT:
            message = await receive()
            size += len(message.get("body", b""))
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                return


__all__ = ["DRAIN_LIMIT", "MAX_DEPTH", "BodyError", "RequestBody", "check_json", "error_response"]
