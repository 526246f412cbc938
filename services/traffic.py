"""BentoML's request timeout (`traffic={"timeout": ...}`) without its per-request memory cost.

BentoML's TimeoutMiddleware (bentoml 1.4.x, bentoml/_internal/server/http/traffic.py) schedules
`loop.call_later(timeout, ...)` for every request and never cancels it. Each request thus left a timer in the event
loop for `serving.timeout_s` (300 s) after it was answered, and the timer held the request's context: its
OpenTelemetry span with its attributes, futures, context variables, ~5 KB. Memory grew with the request rate
times the timeout (~50,000 timers, some 250 MB, at 170 requests a second), and the heap it grew into stayed.

Ours answers the same way (504 when nothing was sent within the timeout; no limit once the response has started)
but cancels its timer as soon as the response starts, and the timer runs in an empty context so that, while
pending, it holds nothing of the request. `install()` puts it where BentoML looks the middleware up when it builds
a service's app; every service module calls it (tests/integration/test_api_memory.py is the soak test).

Its request metrics were labelled with the raw path, so every distinct path (each video's
`/api/v1/videos/<name>`, each unknown path a scanner tries) added ~20 time series for good: to the worker's
memory, to its metrics files and to every /metrics answer (~4.6 KB each). `install()` also makes BentoML label
them with the route's template (`/api/v1/videos/{name}`), and a path no route matches with `unmatched`.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging

from starlette.responses import JSONResponse
from starlette.routing import Mount, compile_path

_LOGGER = logging.getLogger(__name__)
UNMATCHED = "unmatched"  # the metrics' endpoint label of a path no route matches


class TimeoutMiddleware:
    def __init__(self, app, timeout: float) -> None:
        self.app = app
        self.timeout = timeout

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        loop = asyncio.get_running_loop()
        started = loop.create_future()  # done when the app sends its first message, or ends without one
        timer = loop.call_later(self.timeout, _time_out, started, context=contextvars.Context())

        async def _send(message) -> None:
            if not started.done():
                started.set_result(None)
            await send(message)

        def _ended(_) -> None:
            if not started.done():
                started.set_result(None)

        task = asyncio.ensure_future(self.app(scope, receive, _send))
        task.add_done_callback(_ended)
        try:
            await started
        except TimeoutError:
            if task.cancel():
                body = {"error": f"Not able to process the request in {self.timeout} seconds"}
                return await JSONResponse(body, status_code=504)(scope, receive, send)
        finally:
            timer.cancel()
        await task


def _time_out(started: asyncio.Future) -> None:
    if not started.done():
        started.set_exception(TimeoutError())


def route_templates(routes, prefix: str = "") -> list[str]:
    """The path templates of an app's routes ("/api/v1/videos/{name}"), through mounts and FastAPI's included
    routers, in the order they are matched."""
    out: list[str] = []
    for route in routes:
        if isinstance(route, Mount):
            out += route_templates(route.routes, prefix + route.path) or [prefix + route.path + "/{path:path}"]
        elif hasattr(route, "effective_route_contexts"):  # FastAPI's include_router (fastapi >= 0.13x)
            for context in route.effective_route_contexts():
                if path := context.path or getattr(context.original_route, "path", ""):
                    out.append(prefix + path)
        elif isinstance(getattr(route, "path", None), str):
            out.append(prefix + route.path)
    return out


class RouteLabels:
    """A path -> the template of the first route that matches it, or UNMATCHED: a bounded set of labels."""

    def __init__(self, routes) -> None:
        try:
            templates = route_templates(routes)
        except Exception:  # noqa: BLE001  (labels must never fail a request: every path is then UNMATCHED)
            _LOGGER.exception("the routes could not be read; request metrics are not labelled by route")
            templates = []
        self.patterns = [(compile_path(t)[0], t) for t in dict.fromkeys(templates)]
        self.of = functools.lru_cache(maxsize=1024)(self._of)  # bounded: the paths are whatever clients send

    def _of(self, path: str) -> str:
        return next((template for regex, template in self.patterns if regex.match(path)), UNMATCHED)


LABELLED = (  # BentoML's metrics with an `endpoint` label
    "metrics_request_duration",
    "metrics_request_total",
    "metrics_request_in_progress",
    "metrics_websocket_connections",
    "metrics_websocket_data_received",
    "metrics_websocket_data_sent",
)


class _ByRoute:
    """A labelled metric whose `endpoint` label is the route's template instead of the raw path."""

    def __init__(self, metric, middleware):
        self.metric, self.middleware = metric, middleware

    def labels(self, endpoint: str, **labels):
        return self.metric.labels(endpoint=self.middleware.route_labels.of(endpoint), **labels)


def _route_metrics(base: type) -> type:
    class RouteMetrics(base):
        """BentoML's request metrics, labelled by route (the app's routes are read from the first request)."""

        route_labels: RouteLabels | None = None

        def _setup(self, *args, **kwargs) -> None:
            super()._setup(*args, **kwargs)
            for name in LABELLED:
                if hasattr(self, name):
                    setattr(self, name, _ByRoute(getattr(self, name), self))

        async def __call__(self, scope, receive, send) -> None:
            if self.route_labels is None:  # the app whose middleware this is: Starlette puts it in the scope
                self.route_labels = RouteLabels(getattr(scope.get("app"), "routes", ()))
            await super().__call__(scope, receive, send)

    return RouteMetrics


def install() -> None:
    """Replace BentoML's TimeoutMiddleware with ours, and label its request metrics by route (its app factories
    import both by name when they build an app)."""
    from bentoml._internal.server.http import instruments, traffic

    traffic.TimeoutMiddleware = TimeoutMiddleware
    if not getattr(instruments.RunnerTrafficMetricsMiddleware, "by_route", False):
        instruments.RunnerTrafficMetricsMiddleware = _route_metrics(instruments.RunnerTrafficMetricsMiddleware)
        instruments.RunnerTrafficMetricsMiddleware.by_route = True
