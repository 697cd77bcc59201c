"""OpenTelemetry tracing: a span per HTTP request, per GraphQL operation and per
resolver, exported by OTLP when the standard OTEL_* variables ask for it.

Off unless an OTLP endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT or
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); OTEL_SDK_DISABLED=true or
OTEL_TRACES_EXPORTER=none turn it off again. The exporter reads its other
settings (headers, timeout, protocol details) from the environment itself.

Spans never hold the query text or the arguments: a password or a token may be
written inline in either. Operations are named by their root fields instead.
"""

import os
from collections.abc import Generator, Mapping
from typing import Any

from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind
from starlette.middleware import Middleware
from strawberry.extensions import LifecycleStep
from strawberry.extensions.tracing import OpenTelemetryExtension
from strawberry.types.execution import ExecutionContext

from schema.documents import root_fields

DEFAULT_SERVICE_NAME = "user-service"
ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def provider_from_env(environ: Mapping[str, str] = os.environ) -> TracerProvider | None:
    """A provider exporting by OTLP, or None when tracing is off."""
    if not any(environ.get(name) for name in ENDPOINTS):
        return None
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").lower() == "none":
        return None
    # Imported only when used: the exporter pulls in protobuf and requests.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter,
    )

    provider = TracerProvider(resource=resource(environ))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def resource(environ: Mapping[str, str]) -> Resource:
    """OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, named user-service by default."""
    named = (
        {} if environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: DEFAULT_SERVICE_NAME}
    )
    return Resource.create(named)


def http_middleware(provider: TracerProvider | None) -> list[Middleware]:
    """The span of each HTTP request, outermost, so it covers everything else."""
    if provider is None:
        return []
    return [
        Middleware(
            OpenTelemetryMiddleware,
            tracer_provider=provider,
            exclude_spans=["receive", "send"],  # one span a request, not three
        )
    ]


class GraphQLSpans(OpenTelemetryExtension):
    """Strawberry's spans, without the query text or the resolvers' arguments."""

    def __init__(self, *, tracer_provider: TracerProvider, **kwargs: Any) -> None:
        super().__init__(
            tracer_provider=tracer_provider,
            arg_filter=lambda _args, _info: {},
            **kwargs,
        )

    def on_operation(self) -> Generator[None, None, None]:
        context: ExecutionContext = self.execution_context
        span = self._tracer.start_span("GraphQL operation", kind=SpanKind.SERVER)
        span.set_attribute("component", "graphql")
        self._span_holder[LifecycleStep.OPERATION] = span
        yield
        if context.graphql_document is not None:
            name = root_fields(context.graphql_document, context.operation_name)
            if name is not None:
                span.update_name(f"GraphQL {context.operation_type.value} {name}")
                span.set_attribute("graphql.operation.root_fields", name)
        if context.operation_name:
            span.set_attribute("graphql.operation.name", context.operation_name[:100])
        span.end()


def schema_extensions(provider: TracerProvider | None) -> list[Any]:
    if provider is None:
        return []
    return [lambda: GraphQLSpans(tracer_provider=provider)]
