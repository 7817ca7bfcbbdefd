"""The HTTP app: `create_app(settings, service)` returns an ASGI app serving the model service (serving/service.py),
which it starts and stops in its lifespan; no module-level state.

Routes: the Open Inference Protocol (V2) REST paths, `POST /predict` for humans, the load balancer's health check
path, `GET /status` for operators and OpenAPI docs at `/docs`. Every route is also served under the route prefix the
load balancer routes by (e.g. `/a/v2/...`). Inference bodies are read as bytes and parsed by the data plane with
orjson: no per-request pydantic models on the hot path.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from serving import __version__
from serving.auth import RequireApiKey, open_paths, refuse
from serving.binary import HEADER_LENGTH, OCTET_STREAM, Answer, header_length
from serving.contract import LIVENESS_PATH, READINESS_PATH
from serving.dataplane import DataPlane
from serving.errors import ServingError
from serving.http import error_payload, read_body, serving_error, unexpected_error
from serving.service import ModelService, assemble
from serving.settings import ServingSettings

log = logging.getLogger("serving.app")
JSON = "application/json"


# --- documentation-only schemas: the hot path never builds these ---------------------------------------------------

class RequestInput(BaseModel):
    name: str
    shape: list[int] = Field(examples=[[1, 30]])
    datatype: str = Field(examples=["FP32"])
    data: list[Any]
    parameters: dict[str, Any] | None = None


class RequestOutput(BaseModel):
    name: str


class InferenceRequest(BaseModel):
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = None


class PredictRequest(BaseModel):
    instances: list[Any] = Field(examples=[[[17.99, 10.38, 122.8, 1001.0, 0.1184, 0.2776, 0.3001, 0.1471, 0.2419,
                                             0.07871, 1.095, 0.9053, 8.589, 153.4, 0.006399, 0.04904, 0.05373,
                                             0.01587, 0.03003, 0.006193, 25.38, 17.33, 184.6, 2019.0, 0.1622,
                                             0.6656, 0.7119, 0.2654, 0.4601, 0.1189]]])


def _json(payload: bytes, status: int = 200) -> Response:
    return Response(content=payload, status_code=status, media_type=JSON)


def _dump(content: Any, status: int = 200) -> Response:
    return _json(orjson.dumps(content), status)


_JSON_TYPE = (b"content-type", JSON.encode())
_BINARY_TYPE = (b"content-type", OCTET_STREAM.encode())
_HEADER_LENGTH = HEADER_LENGTH.encode()


def _answer_headers(answer: Answer) -> list[tuple[bytes, bytes]]:
    """Content type and length of an inference answer, and where its JSON ends when binary outputs follow."""
    length = (b"content-length", str(len(answer.payload)).encode())
    if answer.header_length is None:
        return [_JSON_TYPE, length]
    return [_BINARY_TYPE, length, (_HEADER_LENGTH, str(answer.header_length).encode())]


def _request_header_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for key, value in headers:
        if key == _HEADER_LENGTH:
            return header_length(value)
    return None


class StripPrefix:
    """Serves `<prefix>/x` as `/x` (the load balancer routes `/a/*` to endpoint a without rewriting paths)."""

    def __init__(self, app: ASGIApp, prefix: str):
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path == self.prefix or path.startswith(self.prefix + "/"):
                scope = {**scope, "path": path[len(self.prefix):] or "/",
                         "root_path": scope.get("root_path", "") + self.prefix}
        await self.app(scope, receive, send)


class InferenceFastPath:
    """Serves the two inference routes straight from ASGI, in front of FastAPI.

    FastAPI's routing, dependency resolution and middleware cost more than the model call for a small model: this
    path reads the body, calls the same data plane and writes the bytes back, and more than doubles requests/s
    (bench/serving). Everything else, and these routes when `fast_path` is off, goes to the FastAPI app, whose
    routes of the same name document the API.
    """

    def __init__(self, app: ASGIApp, plane: DataPlane, limit: int, guard: RequireApiKey | None = None):
        self.app = app
        self.plane = plane
        self.limit = limit
        self.guard = guard
        """Checks the API key of the inference routes itself; `app` carries the same guard for every other route."""

    def _route(self, path: str) -> tuple[str, str | None] | None:
        """(model name, version) for an infer path, ("", None) for /predict, None for anything else."""
        if path == "/predict":
            return "", None
        parts = path.split("/")
        # ['', 'v2', 'models', name, 'infer'] or ['', 'v2', 'models', name, 'versions', version, 'infer']
        if len(parts) == 5 and parts[1] == "v2" and parts[2] == "models" and parts[4] == "infer" and parts[3]:
            return parts[3], None
        if (len(parts) == 7 and parts[1] == "v2" and parts[2] == "models" and parts[4] == "versions"
                and parts[6] == "infer" and parts[3] and parts[5]):
            return parts[3], parts[5]
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._route(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        if self.guard is not None and (refusal := self.guard.refusal(scope["headers"])) is not None:
            await refuse(send, refusal)
            return
        try:
            body = await read_body(scope["headers"], receive, self.limit)
            name, version = route
            if name == "":
                answer = Answer(await self.plane.predict(body))
            else:
                answer = await self.plane.infer(name, version, body, _request_header_length(scope["headers"]))
            status = 200
        except ServingError as exc:
            status, payload = serving_error(exc)
            answer = Answer(payload)
        except Exception as exc:
            status, payload = unexpected_error(exc, self.plane.metrics, scope["path"])
            answer = Answer(payload)
        await send({"type": "http.response.start", "status": status, "headers": _answer_headers(answer)})
        await send({"type": "http.response.body", "body": answer.payload})


def create_app(settings: ServingSettings, service: ModelService | None = None) -> ASGIApp:
    """The app for `service` (assembled from `settings` when omitted)."""
    service = service or assemble(settings)
    plane = service.plane

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            # Every request has finished by now (uvicorn drains before the lifespan ends).
            await service.stop()

    app = FastAPI(title="ecs-mlops model server", version=__version__, lifespan=lifespan,
                  description="Open Inference Protocol (KServe V2) REST API, plus `/predict` for simple clients.")

    def error(status: int, payload: bytes) -> Response:
        return _json(payload, status)

    @app.exception_handler(ServingError)
    async def on_serving_error(_: Request, exc: ServingError) -> Response:
        return error(*serving_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(_: Request, exc: StarletteHTTPException) -> Response:
        return error(*error_payload(exc.status_code, str(exc.detail)))

    @app.exception_handler(Exception)
    async def on_unexpected_error(request: Request, exc: Exception) -> Response:
        return error(*unexpected_error(exc, plane.metrics, request.url.path))

    def ready_response() -> Response:
        if plane.ready():
            return _dump({"ready": True})
        return _dump({"ready": False}, 503)

    @app.get("/v2", tags=["v2"], summary="Server metadata")
    async def server_metadata() -> Response:
        return _dump(plane.server_metadata())

    @app.get(LIVENESS_PATH, tags=["v2"], summary="Liveness")
    async def health_live() -> Response:
        return _dump({"live": plane.live()})

    @app.get(READINESS_PATH, tags=["v2"], summary="Readiness: a model is loaded and the server is not stopping")
    async def health_ready() -> Response:
        return ready_response()

    # A health path under the route prefix reaches the app with the prefix stripped.
    for path in sorted(open_paths(settings.health_path, settings.prefix) - {READINESS_PATH, LIVENESS_PATH}):
        app.add_api_route(path, health_ready, methods=["GET"], tags=["health"],
                          summary="The load balancer's health check (readiness)")

    @app.get("/v2/models", tags=["v2"], summary="Models served")
    async def list_models() -> Response:
        return _dump(plane.models())

    @app.get("/v2/models/{name}", tags=["v2"], summary="Model metadata")
    @app.get("/v2/models/{name}/versions/{version}", tags=["v2"], summary="Model version metadata")
    async def model_metadata(name: str, version: str | None = None) -> Response:
        return _dump(plane.model_metadata(name, version))

    @app.get("/v2/models/{name}/ready", tags=["v2"], summary="Model readiness")
    @app.get("/v2/models/{name}/versions/{version}/ready", tags=["v2"], summary="Model version readiness")
    async def model_ready(name: str, version: str | None = None) -> Response:
        ready = plane.model_ready(name, version)
        return _dump({"name": name, "ready": ready}, 200 if ready else 503)

    @app.post("/v2/models/{name}/infer", tags=["v2"], summary="Inference")
    @app.post("/v2/models/{name}/versions/{version}/infer", tags=["v2"], summary="Inference on a version")
    async def infer(request: Request, name: str, version: str | None = None) -> Response:
        body = await read_body(request.scope["headers"], request.receive, settings.max_request_bytes)
        answer = await plane.infer(name, version, body, _request_header_length(request.scope["headers"]))
        response = Response(content=answer.payload, status_code=200)
        response.raw_headers = _answer_headers(answer)
        return response

    @app.post("/predict", tags=["simple"], summary="Predict: instances in, predictions out")
    async def predict(request: Request) -> Response:
        body = await read_body(request.scope["headers"], request.receive, settings.max_request_bytes)
        return _json(await plane.predict(body))

    @app.get("/status", tags=["operations"], summary="Live version, rejected versions, capture counters")
    async def status() -> Response:
        return _dump(plane.status())

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    served: ASGIApp = app
    guard = None
    if service.api_keys is not None:
        served = guard = RequireApiKey(app, service.api_keys, plane.metrics,
                                       open_paths(settings.health_path, settings.prefix))
    if settings.fast_path:
        served = InferenceFastPath(served, plane, settings.max_request_bytes, guard)
    return StripPrefix(served, settings.prefix) if settings.prefix else served


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema, plus the request bodies the raw inference routes read."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model, paths in ((InferenceRequest, ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer")),
                         (PredictRequest, ("/predict",))):
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(model_schema.pop("$defs", {}))
        components[model.__name__] = model_schema
        for path in paths:
            schema["paths"][path]["post"]["requestBody"] = {"required": True, "content": {
                JSON: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}
    app.openapi_schema = schema
    return schema
