"""The front door's nginx configuration, generated from the gateway's area registry (`domain.AREAS`).

nginx is the platform's door: it terminates TLS, refuses what can be refused without asking anyone (framing,
body size, rate), asks the gateway's decision endpoint (`auth_request`) whether a call may pass, caches an
allowing answer for at most one second, proxies to the service that owns the area, and writes one JSON access
line per request, which the gateway ships into its outbox (`door_access`). Every refusal nginx gives itself is
in the platform's error shape, with the request id as `trace_id`, in `x-request-id`, and as the trace id of the
`traceparent` the upstream receives.

Pure: values in, text out. `govshare up` and the tests' `platform` fixture write it and start nginx on it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from govshare_common.keep_alive import CALLER_IDLE_SECONDS

from gateway.domain import AREAS

# Idle upstream connections are dropped before the services drop them (the keep-alive rule in libs/common).
_IDLE = int(CALLER_IDLE_SECONDS)

# A service the layout does not name: nothing listens there, so its area answers 503.
NOWHERE = "http://127.0.0.1:1"
MAX_BODY_MB = 10
MAX_BULK_MB = 256
# Ingest batches stream through exchange-svc in bounded memory (chunk by chunk), so their size is a disk's, not a
# service's; a 10 M-row population library is about 2 GB. The answer comes once the whole batch is switched
# in, which for such a batch takes minutes after its last byte.
MAX_BATCH_GB = 64
BATCH_READ_TIMEOUT_S = 3600.0
BATCH_SEND_TIMEOUT_S = 300.0
# How long a service may take to answer, by service (exports stream for long).
READ_TIMEOUTS = {"catalog": 10.0, "request": 10.0, "exchange": 60.0, "audit": 30.0, "console": 5.0, "gateway": 30.0}
DECISION_PATH = "/_door/decide"  # the gateway's decision endpoint; in nginx, the cache in front of it (door.js)
ASK_PATH = "/_door/ask"  # where door.js asks the gateway on a miss
# nginx's own refusals are internal locations by URI, not named ones: a request refused while its request line
# is read (a NUL in the path) has no URI yet, and nginx cannot redirect that to a named location.
ERROR_PATH = "/_door/error/"
# Headers the decision endpoint answers with and nginx turns into variables (and never shows a caller).
DECISION_HEADERS = (
    "principal",
    "kind",
    "department",
    "client",
    "resource",
    "purpose",
    "reason",
    "status",
    "error",
    "retry-after",
    "rate",
    "burst",
    "rate-key",
    "rate-anonymous",
    "authorization",
    "decided",
    "cache",
    "rate-wait",
)


@dataclass(frozen=True)
class DoorLayout:
    """Where nginx listens, what it talks to, and where it keeps its files."""

    listen_port: int
    gateway_url: str  # the decision processes (one address; uvicorn spreads them)
    service_urls: Mapping[str, str]  # service name -> base URL
    access_log: Path  # the JSON access lines the gateway ships
    error_log: Path
    run_dir: Path = Path()  # pid, temp files, the decision cache: set by whoever starts nginx
    worker_processes: int = 2
    read_timeouts: Mapping[str, float] = field(default_factory=dict)
    tls_port: int | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None  # certificates of machine clients and peers are checked against it
    # Callers whose X-Forwarded-For nginx believes (an Ingress in front of it): the last address in it is the
    # client's, as the gateway's GOVSHARE_TRUSTED_PROXIES rule says.
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    listen_host: str = "127.0.0.1"  # 0.0.0.0 in a container, where the pod's network is the boundary


def _hostport(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


_MESSAGES: dict[str, tuple[str, str]] = {}


def _error_return(status: int, code: str, zh: str, en: str, *, details: str = "{}") -> str:
    """A `return` of the error shape, its message in the caller's language (zh-CN unless it asks for English)."""
    name = f"door_message_{len(_MESSAGES)}"
    _MESSAGES[name] = (zh, en)
    body = '{"code":' + json.dumps(code) + ',"message":"$' + name + '","details":' + details
    return "return " + str(status) + " '" + body + ',"trace_id":"$door_request_id"}' + "';"


def _message_maps() -> str:
    def quoted(text: str) -> str:
        assert '"' not in text and "\\" not in text and "'" not in text
        return '"' + text + '"'

    return "\n".join(
        f"""    map $door_lang ${name} {{
        en {quoted(en)};
        default {quoted(zh)};
    }}"""
        for name, (zh, en) in _MESSAGES.items()
    )


# Refusals nginx gives itself. A decision's own refusal carries its body in a header (@refused).
_NGINX_REFUSALS = {
    400: (
        "bad_request",
        "请求格式不正确（请求行或请求头无法解析，例如路径中含有 NUL 字符），请检查后重试。",
        "The request is malformed (its request line or headers cannot be parsed, e.g. a NUL in the path).",
    ),
    404: ("not_found", "请求的资源不存在，请检查地址。", "Nothing exists at this address; check the URL."),
    405: ("method_not_allowed", "不支持此请求方法。", "This method is not allowed here."),
    408: ("request_timeout", "请求发送超时，请重试。", "The request was not sent in time; retry."),
    413: ("too_large", "请求内容超过上限，请拆分后重试。", "The body exceeds the limit; split it."),
    414: ("uri_too_long", "请求地址过长。", "The request URI is too long."),
    431: ("headers_too_large", "请求头过大。", "The request headers are too large."),
    494: ("headers_too_large", "请求头过大。", "The request headers are too large."),
    500: (
        "internal_error",
        "服务内部错误，已记录。请稍后重试；如持续出现，请将 trace_id 提供给平台运维。",
        "Internal error, logged. Retry later; if it persists, give the trace_id to platform operations.",
    ),
    502: ("upstream_unavailable", "服务暂时无法连接，请稍后重试。", "The service cannot be reached; retry shortly."),
    503: ("upstream_unavailable", "服务暂时不可用，请稍后重试。", "The service is unavailable; retry shortly."),
    504: ("upstream_timeout", "服务响应超时。", "The service did not answer in time."),
}
# An upstream that cannot be reached is a 503 to the caller, as the Python door answered.
_ANSWERED_AS = {502: 503}

_LOG_FIELDS = {
    "at": "$time_iso8601",
    "request_id": "$door_request_id",
    "method": "$request_method",
    "uri": "$request_uri",
    "request": "$request",  # the request line: all there is of a request refused while it was read
    "status": "$status",
    "request_time": "$request_time",
    "bytes_in": "$request_length",
    "bytes_out": "$bytes_sent",
    "body_bytes": "$content_length",
    "principal": "$door_log_principal",
    "kind": "$door_log_kind",
    "department": "$door_log_department",
    "client": "$door_log_client",
    "resource": "$door_log_resource",
    "purpose": "$door_log_purpose",
    "reason": "$door_log_reason",
    "decided": "$door_decided_decided",
    "decision_cache": "$door_decided_cache",
}


def access_log_format() -> str:
    return "{" + ",".join(f'"{k}":"{v}"' for k, v in _LOG_FIELDS.items()) + "}"


def render(layout: DoorLayout) -> str:
    _MESSAGES.clear()
    timeouts = {**READ_TIMEOUTS, **layout.read_timeouts}
    services = sorted({a.service for a in AREAS.values()} | {"console"})
    upstreams = "\n".join(
        f"""    upstream svc_{name} {{
        server {_hostport(layout.service_urls.get(name, NOWHERE))} max_fails=5 fail_timeout=10s;
        keepalive 64;
        keepalive_timeout {_IDLE}s;
    }}"""
        for name in services
    )
    area_locations = "\n".join(_area_location(area.name, area.service, timeouts) for area in AREAS.values())
    named = "\n".join(_pass_location(name, timeouts) for name in services if name != "console")
    # exchange-svc reads a batch's next rows once it has staged a chunk, which on a busy machine can take longer
    # than the door's usual wait for a write to go through.
    named += "\n" + _pass_location(
        "exchange",
        {"exchange": BATCH_READ_TIMEOUT_S},
        name="batch",
        send_timeout=f"\n            proxy_send_timeout {_ms(BATCH_SEND_TIMEOUT_S)};",
    )
    coalesced = "\n".join(
        f"""    map $door_decided_{h} $door_log_{h} {{
        "" $upstream_http_x_govshare_{h};
        default $door_decided_{h};
    }}"""
        for h in ("principal", "kind", "department", "client", "reason")
    )
    hidden = "\n".join(f"        proxy_hide_header X-Govshare-{h.title()};" for h in DECISION_HEADERS)
    error_locations = "\n".join(
        f"""        location = {ERROR_PATH}{status} {{
            internal;
            default_type application/json;
            add_header X-Request-Id $door_request_id always;
            {_error_return(_ANSWERED_AS.get(status, status), code, zh, en)}
        }}"""
        for status, (code, zh, en) in _NGINX_REFUSALS.items()
    )
    error_locations += f"""
        location = {ERROR_PATH}decision {{
            internal;
            default_type application/json;
            add_header X-Request-Id $door_request_id always;
            {_error_return(503, "decision_unavailable", "访问决策服务暂时不可用，请稍后重试。", "The access decision service is unavailable; retry shortly.")}
        }}"""
    refusal_returns = "\n".join(
        f"            if ($door_decided_status = {s}) {{ return {s} $door_decided_error; }}"
        for s in (400, 404, 413, 429)
    )
    tls = ""
    if layout.tls_port and layout.tls_cert and layout.tls_key:
        tls = f"""
        listen {layout.listen_host}:{layout.tls_port} ssl;
        http2 on;
        ssl_certificate {layout.tls_cert};
        ssl_certificate_key {layout.tls_key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:door_tls:4m;"""
        if layout.client_ca:
            tls += f"""
        ssl_client_certificate {layout.client_ca};
        ssl_verify_client optional;"""
    js = Path(__file__).with_name("door.js")
    text = _render_text(
        layout,
        timeouts,
        services,
        upstreams,
        area_locations,
        named,
        coalesced,
        hidden,
        error_locations,
        refusal_returns,
        tls,
        js,
    )
    return text.replace("    # @message-maps\n", _message_maps() + "\n")


def _render_text(
    layout: DoorLayout,
    timeouts: Mapping[str, float],
    services: list[str],
    upstreams: str,
    area_locations: str,
    named: str,
    coalesced: str,
    hidden: str,
    error_locations: str,
    refusal_returns: str,
    tls: str,
    js: Path,
) -> str:
    real_ip = "\n".join(f"    set_real_ip_from {p};" for p in layout.trusted_proxies)
    if real_ip:
        real_ip += "\n    real_ip_header X-Forwarded-For;"
    return f"""# Generated by govshare from the gateway's area registry; edits are overwritten on the next start.
worker_processes {layout.worker_processes};
pid {layout.run_dir / "nginx.pid"};
error_log {layout.error_log} warn;
daemon off;

events {{
    worker_connections 4096;
}}

http {{
    server_tokens off;
{real_ip}
    variables_hash_max_size 4096;
    default_type application/json;
    uninitialized_variable_warn off;
    client_body_temp_path {layout.run_dir / "body"};
    proxy_temp_path {layout.run_dir / "proxy"};
    fastcgi_temp_path {layout.run_dir / "fastcgi"};
    uwsgi_temp_path {layout.run_dir / "uwsgi"};
    scgi_temp_path {layout.run_dir / "scgi"};

    js_path {js.parent};
    js_import door from {js.name};
    js_shared_dict_zone zone=door_rates:8m timeout=120s;
    # Allowing decisions, at most half a second each (door.js); an entry sets its own, shorter, timeout.
    js_shared_dict_zone zone=door_decisions:32m timeout=1s evict;
    js_set $door_client_cert_js door.clientCertificate;
    # njs only for a connection that presented a verified certificate: a VM a request costs CPU.
    map $ssl_client_verify $door_client_cert {{
        SUCCESS $door_client_cert_js;
        default "";
    }}

    # The request id: the caller's when it is a plain token, else nginx's own (32 hex digits).
    map $http_x_request_id $door_request_id {{
        "~^[A-Za-z0-9._:-]{{1,128}}$" $http_x_request_id;
        default $request_id;
    }}
    map $door_request_id $door_trace_id {{
        "~^[0-9a-f]{{32}}$" $door_request_id;
        default $request_id;
    }}
    map $request_id $door_span_id {{
        "~^(?<span>[0-9a-f]{{16}})" $span;
    }}
    map $http_accept_language $door_lang {{
        "~*^\\s*en" en;
        default zh;
    }}
    # A read with a body would leave a pooled upstream connection waiting for bytes; refused before anything.
    map "$request_method:$http_content_length:$http_transfer_encoding" $door_bad_framing {{
        "~^(GET|HEAD|OPTIONS):(0)?:$" 0;
        "~^(GET|HEAD|OPTIONS):" 1;
        default 0;
    }}
    map $request_uri $door_path {{
        "~^(?<path>[^?]*)" $path;
    }}
    map $door_decided_authorization $door_upstream_authorization {{
        "" $http_authorization;
        default $door_decided_authorization;
    }}
    map $door_decided_purpose $door_log_purpose {{
        "" $http_x_govshare_purpose;
        default $door_decided_purpose;
    }}
    map $door_decided_resource $door_log_resource {{
        default $door_decided_resource;
    }}
{coalesced}
    # @message-maps

    log_format door escape=json '{access_log_format()}';
    access_log {layout.access_log} door;

    proxy_http_version 1.1;
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_connect_timeout 1s;
    proxy_send_timeout 30s;
    proxy_next_upstream error timeout;
    proxy_next_upstream_tries 2;
    client_body_timeout 30s;
    client_header_timeout 10s;
    send_timeout 60s;
    keepalive_requests 10000;

    upstream door_gateway {{
        server {_hostport(layout.gateway_url)} max_fails=0;
        keepalive 64;
        keepalive_timeout {_IDLE}s;
    }}
{upstreams}

    server {{
        listen {layout.listen_host}:{layout.listen_port} backlog=4096;{tls}
        client_max_body_size {MAX_BODY_MB}m;
{_proxy_headers()}
        add_header X-Request-Id $door_request_id always;
        proxy_hide_header X-Request-Id;
{hidden}
{_error_pages()}

        if ($door_bad_framing) {{
            {_error_return(400, "bad_request_framing", "GET/HEAD/OPTIONS 请求不能携带请求体。", "A GET, HEAD or OPTIONS request must not carry a body.")}
        }}

        location = {DECISION_PATH} {{
            internal;
            js_content door.decide;
        }}

        location = {ASK_PATH} {{
            internal;
            proxy_pass http://door_gateway{DECISION_PATH};
            proxy_pass_request_body off;
{_proxy_headers()}
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-Uri $request_uri;
            proxy_buffering on;  # njs reads the answer whole
            proxy_buffer_size 16k;  # a refusal's body travels in a header
            proxy_buffers 4 16k;
            proxy_busy_buffers_size 16k;
            proxy_hide_header X-Request-Id;  # door.js copies the decision's x-govshare-* headers, hidden no more
            proxy_read_timeout 5s;
        }}

        location @refused {{
            default_type application/json;
            add_header X-Request-Id $door_request_id always;
            add_header Retry-After $door_decided_retry_after always;
{refusal_returns}
            if ($door_decided_status = 401) {{ return 401 $door_decided_error; }}
            if ($door_decided_status = 403) {{ return 403 $door_decided_error; }}
            {_error_return(503, "decision_unavailable", "访问决策服务暂时不可用，请稍后重试。", "The access decision service is unavailable; retry shortly.")}
        }}

        location @rate_limited {{
            default_type application/json;
            add_header X-Request-Id $door_request_id always;
            add_header Retry-After $door_decided_rate_wait always;
            {_error_return(429, "rate_limited", "请求过于频繁，请稍后重试。", "Too many requests; retry after the time in Retry-After.", details='{"retry_after_seconds":$door_decided_rate_wait}')}
        }}

{area_locations}

        location /console/ {{
            if ($request_method !~ ^(GET|HEAD)$) {{
                {_error_return(404, "not_found", "控制台页面只支持读取。", "Console pages are read-only.")}
            }}
            proxy_read_timeout {_ms(timeouts["console"])};
            proxy_pass http://svc_console;
        }}

        location /_door/ {{
            {_error_return(404, "not_found", "请求的资源不存在，请检查地址。", "Nothing exists at this address; check the URL.")}
        }}

        # Identity, tokens, JWKS, the calendar, and whatever else the gateway serves itself.
        location / {{
            proxy_read_timeout {_ms(timeouts["gateway"])};
            proxy_pass http://door_gateway;
        }}

{named}

{error_locations}
    }}
}}
"""


def _proxy_headers() -> str:
    # Repeated in every location that sets a header of its own: nginx inherits none of a level's
    # proxy_set_header lines into a location that has one.
    return """            # Nothing a caller sends may stand in for nginx's own word on the client certificate.
            proxy_set_header X-Client-Cert-Sha256 $door_client_cert;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Request-Id $door_request_id;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header traceparent "00-$door_trace_id-$door_span_id-01";
            proxy_set_header tracestate "";"""


def _error_pages(indent: str = "        ", *, decided: bool = False) -> str:
    # Like proxy_set_header, error_page lines are inherited only by a location that has none of its own.
    lines = []
    for status in _NGINX_REFUSALS:
        if decided and status == 500:
            # nginx's own 500 where a decision is asked for: the decision endpoint did not answer.
            lines.append(f"{indent}error_page 500 =503 {ERROR_PATH}decision;")
        else:
            lines.append(f"{indent}error_page {status} ={_ANSWERED_AS.get(status, status)} {ERROR_PATH}{status};")
    return "\n".join(lines)


def _decision_settings() -> str:
    names = "\n".join(
        f"            auth_request_set $door_decided_{h.replace('-', '_')} $sent_http_x_govshare_{h.replace('-', '_')};"
        for h in DECISION_HEADERS
    )
    return f"""            auth_request {DECISION_PATH};
{names}
{_error_pages("            ", decided=True)}
            error_page 401 403 = @refused;"""


def _area_location(area: str, service: str, timeouts: Mapping[str, float]) -> str:
    bulk = ""
    if service == "exchange":
        # File uploads stream through up to the bulk limit; ingest batches up to the batch limit, answered late.
        bulk = f"""
        location ~ ^/api/v1/{area}/.*/files$ {{
            client_max_body_size {MAX_BULK_MB}m;
{_decision_settings()}
            try_files /.door-pass @pass_{service};
        }}
        location ~ ^/api/v1/{area}/.*/batches$ {{
            client_max_body_size {MAX_BATCH_GB}g;
            client_body_timeout {_ms(BATCH_SEND_TIMEOUT_S)};
{_decision_settings()}
            try_files /.door-pass @batch_{service};
        }}"""
    return f"""        location /api/v1/{area}/ {{
{_decision_settings()}
            try_files /.door-pass @pass_{service};
        }}
        location = /api/v1/{area} {{
{_decision_settings()}
            try_files /.door-pass @pass_{service};
        }}{bulk}"""


def _pass_location(service: str, timeouts: Mapping[str, float], *, name: str = "pass", send_timeout: str = "") -> str:
    # Reached after the decision allowed the call; the client's rate is taken here, in memory all nginx
    # workers share, so it holds however many decision processes there are and whether the decision was cached.
    return f"""        location @{name}_{service} {{
            if ($door_decided_rate_wait != 0) {{
                return 418;
            }}
{_error_pages("            ")}
            error_page 418 = @rate_limited;
{_proxy_headers()}
            proxy_set_header Authorization $door_upstream_authorization;
            proxy_read_timeout {_ms(timeouts.get(service, 30.0))};{send_timeout}
            proxy_pass http://svc_{service};
        }}"""


def _ms(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"
