"""GET /metrics: the Prometheus text format. No API key: restrict it at the proxy."""

from starlette.requests import Request
from starlette.responses import Response

from metrics import exposition


async def metrics(request: Request) -> Response:
    body, content_type = exposition()
    return Response(body, media_type=content_type)
