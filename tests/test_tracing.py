"""OpenTelemetry: spans per request, operation and resolver, holding no secret,
and exported by OTLP from a real server process when OTEL_* asks for it."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from starlette.testclient import TestClient

from app import create_app
from models.db import close_database
from settings import Settings
from tests.conftest import PASSWORD, Api, make_environ
from tests.servers import Servers
from tracing import provider_from_env

SECRET_PASSWORD = "inline-Pw-7f3a!"


@pytest.fixture
def spans(settings: Settings) -> Iterator[tuple[Api, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with TestClient(create_app(settings, tracer_provider=provider)) as client:
        yield Api(client, settings.dev_api_key, settings), exporter
    close_database()


def named(finished: tuple[ReadableSpan, ...], name: str) -> ReadableSpan:
    matches = [span for span in finished if span.name == name]
    assert len(matches) == 1, [span.name for span in finished]
    return matches[0]


def test_a_request_is_one_trace_from_http_to_resolver(
    spans: tuple[Api, InMemorySpanExporter],
) -> None:
    api, exporter = spans
    token = api.user("ann@x.io")
    exporter.clear()
    assert api.me(token).ok()["me"]["email"] == "ann@x.io"
    finished = exporter.get_finished_spans()
    http = named(finished, "POST /graphql")
    operation = named(finished, "GraphQL query me")
    resolver = named(finished, "GraphQL Resolving: me")
    assert http.attributes is not None
    assert http.attributes["http.status_code"] == 200
    assert operation.parent is not None
    assert resolver.parent is not None
    assert operation.parent.span_id == http.context.span_id
    assert resolver.parent.span_id == operation.context.span_id
    assert {http.context.trace_id, resolver.context.trace_id} == {
        operation.context.trace_id
    }


def test_spans_hold_no_password_token_or_key(
    spans: tuple[Api, InMemorySpanExporter],
) -> None:
    api, exporter = spans
    api.sign_up("ann@x.io", SECRET_PASSWORD).ok()
    token = api.token("ann@x.io", SECRET_PASSWORD)  # the password as a variable
    inline = api.gql(
        f'mutation {{ login(email: "ann@x.io", password: "{SECRET_PASSWORD}")'
        " { refreshToken } }"
    ).ok()["login"]["refreshToken"]
    api.me(token).ok()
    api.gql(
        "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken } }",
        {"t": inline},
    ).ok()
    finished = exporter.get_finished_spans()
    names = [span.name for span in finished]
    assert names.count("GraphQL mutation login") == 2, names
    assert names.count("GraphQL Resolving: refreshSession") == 1, names
    values = [
        str(value) for span in finished for value in (span.attributes or {}).values()
    ]
    for secret in (SECRET_PASSWORD, token, inline, api.api_key, PASSWORD):
        assert not [value for value in values if secret in value], secret


def test_tracing_is_off_unless_an_otlp_endpoint_is_set() -> None:
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    assert provider_from_env({}) is None
    assert provider_from_env({**endpoint, "OTEL_SDK_DISABLED": "true"}) is None
    assert provider_from_env({**endpoint, "OTEL_TRACES_EXPORTER": "none"}) is None
    for variables in (
        endpoint,
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"},
    ):
        provider = provider_from_env(variables)
        assert isinstance(provider, TracerProvider)
        assert provider.resource.attributes["service.name"] == "user-service"
        provider.shutdown()


class Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver: keeps what is posted to /v1/traces."""

    received: list[ExportTraceServiceRequest]
    arrived: threading.Event

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        if self.path == "/v1/traces":
            export = ExportTraceServiceRequest()
            export.ParseFromString(body)
            self.received.append(export)
            self.arrived.set()
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.mark.slow
def test_a_server_process_exports_its_spans_by_otlp(tmp_path: Path) -> None:
    Collector.received, Collector.arrived = [], threading.Event()
    collector = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    environ = make_environ(
        tmp_path,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{collector.server_port}",
        OTEL_BSP_SCHEDULE_DELAY="100",
    )
    servers = Servers()
    try:
        server = servers.start(environ)
        server.dev.sign_up("ann@x.io").ok()
        assert Collector.arrived.wait(timeout=30), server.log_tail()
    finally:
        servers.stop_all()
        collector.shutdown()
        collector.server_close()
    names = set()
    for export in Collector.received:
        for resource_spans in export.resource_spans:
            service = {
                a.key: a.value.string_value for a in resource_spans.resource.attributes
            }
            assert service["service.name"] == "user-service"
            for scope_spans in resource_spans.scope_spans:
                names |= {span.name for span in scope_spans.spans}
    assert {"POST /graphql", "GraphQL mutation signUp"} <= names, names
