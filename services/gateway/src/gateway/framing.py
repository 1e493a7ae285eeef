"""How a caller's request body is framed, decided before anything is forwarded.

The door forwards exactly the request it received or refuses it. A read (GET, HEAD, OPTIONS) carries no body:
one that declares a body is refused, because forwarding its header without its bytes would leave the pooled
upstream connection waiting for them, and the next caller's request would be read as this one's body.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import Headers

from govshare_common.errors import AppError

from gateway.domain import READ_METHODS


class BadFraming(AppError):
    status = 400
    code = "bad_request_framing"


@dataclass(frozen=True)
class BodyFraming:
    has_body: bool
    declared: int | None  # Content-Length, or None for a chunked body


NO_BODY = BodyFraming(has_body=False, declared=0)


def body_framing(headers: Headers, method: str) -> BodyFraming:
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    raw_length = headers.get("content-length")
    declared: int | None = None
    if raw_length is not None:
        if not raw_length.strip().isdigit() or len(raw_length.strip()) > 15:
            raise BadFraming(
                "Content-Length 请求头不是有效的字节数。",
                "The Content-Length header is not a valid byte count.",
                details={"header": "content-length"},
            )
        declared = int(raw_length)
    if chunked and raw_length is not None:
        raise BadFraming(
            "请求不能同时带 Content-Length 和 Transfer-Encoding: chunked。",
            "A request cannot carry both Content-Length and Transfer-Encoding: chunked.",
            details={"header": "transfer-encoding"},
        )
    has_body = chunked or bool(declared)
    if method.upper() in READ_METHODS:
        if has_body:
            raise BadFraming(
                f"{method.upper()} 请求不能携带请求体，请去掉请求体或改用 POST。",
                f"A {method.upper()} request cannot carry a body; drop it or use POST.",
                details={"method": method.upper()},
            )
        return NO_BODY
    return BodyFraming(has_body=has_body, declared=None if chunked else (declared or 0))
