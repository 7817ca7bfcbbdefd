"""The transport-independent data plane: Open Inference Protocol (V2) requests in, responses out, as bytes.

It knows nothing of HTTP: the app maps its methods to routes and its errors (`serving.errors`) to status codes.
Every client mistake raises InvalidRequest, ModelNotFound or PayloadTooLarge with a message saying what is wrong;
a client error never becomes a 5xx. A model that raises on an accepted request raises ModelFailed (500), counted
as a server error and logged; the model keeps serving other requests.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import numpy as np
import orjson

from serving import __version__
from serving.batching import MicroBatcher
from serving.binary import EXTENSION as BINARY_EXTENSION
from serving.binary import Answer, BinaryReader, binary_outputs, binary_size, raw_bytes, split
from serving.capture import CaptureWriter
from serving.concurrency import Concurrency
from serving.contract import DEFAULT_VARIANT
from serving.datatypes import V2_TO_NUMPY, v2_datatype
from serving.errors import InvalidRequest, ModelFailed, ModelNotFound, ModelNotReady
from serving.metrics import Metrics
from serving.repository import LoadedModel, ModelManager
from serving.runtime import TensorSpec
from serving.shadow import ShadowMirror

PLATFORM = "onnxruntime"
DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
log = logging.getLogger("serving.dataplane")
T = TypeVar("T")


def _parse(body: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise InvalidRequest(f"request body must be a JSON object, got {type(parsed).__name__}")
    return parsed


def _tensor(values: Any, dtype: np.dtype, what: str) -> np.ndarray:
    if dtype == np.object_:
        raise InvalidRequest(f"{what}: BYTES tensors are not supported by this model runtime")
    try:
        return np.asarray(values, dtype=dtype)
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(f"{what}: data does not fit datatype {dtype.name} with a regular shape ({exc})") from None


def _check_shape(shape: tuple[int, ...], spec: TensorSpec, what: str) -> None:
    if len(shape) != len(spec.shape) or any(want >= 0 and got != want for got, want in zip(shape, spec.shape,
                                                                                               strict=False)):
        raise InvalidRequest(f"{what}: shape {list(shape)} does not match the model's {list(spec.shape)} "
                             "(-1 is any size)")


def _json_request(request: dict[str, Any], feeds: dict[str, np.ndarray]) -> bytes:
    """A request that carried binary data, all in JSON (what capture records, so that every captured request can be
    read and replayed the same way)."""
    inputs = []
    for entry in request["inputs"]:
        parameters = {key: value for key, value in (entry.get("parameters") or {}).items()
                      if key != "binary_data_size"}
        inputs.append({"name": entry["name"], "shape": entry["shape"], "datatype": entry["datatype"],
                       **({"parameters": parameters} if parameters else {}),
                       "data": np.ascontiguousarray(feeds[entry["name"]]).ravel()})
    return orjson.dumps({**request, "inputs": inputs}, option=DUMP_OPTIONS)


def _encode_output(name: str, array: np.ndarray) -> dict[str, Any]:
    return {"name": name, "datatype": v2_datatype(array), "shape": list(array.shape),
            "data": np.ascontiguousarray(array).ravel()}


class DataPlane:
    def __init__(self, model_name: str, manager: ModelManager, capture: CaptureWriter, metrics: Metrics,
                 batcher: MicroBatcher | None = None, image_tag: str = "local", variant: str = DEFAULT_VARIANT,
                 shadow: ShadowMirror | None = None, capture_max_request_bytes: int | None = None):
        self.model_name = model_name
        self.capture_max_request_bytes = capture_max_request_bytes
        """Larger requests are answered and counted, not captured (a queue worker's 1 GB request would be a 1 GB
        capture record, and several times that in memory while it is encoded). None: no limit."""
        self.capture_skipped_large = 0
        self.concurrency: Concurrency | None = None
        """Counts inference requests in progress (infer and predict) when set (autoscaling on concurrency)."""
        self.image_tag = image_tag
        self.variant = variant
        self.shadow = shadow
        self.manager = manager
        self.capture = capture
        self.metrics = metrics
        self.batcher = batcher or MicroBatcher()
        self.shutting_down = False

    # --- health and metadata ---------------------------------------------------------------------------------------

    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return self.manager.current is not None and not self.shutting_down

    def begin_shutdown(self) -> None:
        """Readiness fails from now on; requests in flight and still arriving are served."""
        self.shutting_down = True

    def server_metadata(self) -> dict[str, Any]:
        return {"name": "ecs-mlops-serving", "version": __version__, "extensions": [BINARY_EXTENSION]}

    def models(self) -> dict[str, Any]:
        return {"models": [self.model_name]}

    def model(self, name: str, version: str | None = None) -> LoadedModel:
        if name != self.model_name:
            raise ModelNotFound(f"model {name!r} is not served here; this server serves {self.model_name!r}")
        current = self.manager.current
        if current is None:
            raise ModelNotReady(f"model {name!r} has no version loaded yet")
        if version is not None and version != current.version:
            raise ModelNotFound(f"version {version!r} of model {name!r} is not loaded; the live version is "
                                f"{current.version!r}")
        return current

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        model = self.model(name, version)
        return {"name": name, "versions": [model.version], "platform": PLATFORM,
                "inputs": [spec.as_dict() for spec in model.inputs],
                "outputs": [spec.as_dict() for spec in model.outputs]}

    def model_ready(self, name: str, version: str | None = None) -> bool:
        if name != self.model_name:
            raise ModelNotFound(f"model {name!r} is not served here; this server serves {self.model_name!r}")
        current = self.manager.current
        if version is not None and (current is None or current.version != version):
            raise ModelNotFound(f"version {version!r} of model {name!r} is not loaded")
        return current is not None and not self.shutting_down

    def status(self) -> dict[str, Any]:
        """What an operator (and the pipeline's smoke test) wants to know: the image and live model version that
        answer, rejected versions and why, capture counters."""
        current = self.manager.current
        return {
            "model_name": self.model_name,
            "variant": self.variant,
            "pinned_version": self.manager.pinned_version or None,
            "image_tag": self.image_tag,
            "live_version": current.version if current else None,
            "rejected_versions": {v.version: v.reason for v in self.manager.failed.values()},
            "capture": {"enabled": self.capture.enabled, "failed": self.capture.failed,
                        "written": self.capture.written, "dropped": self.capture.dropped,
                        "skipped_large": self.capture_skipped_large},
            "batching": {"model_calls": self.batcher.calls, "rows": self.batcher.rows},
            "shadow": self.shadow.status() if self.shadow is not None else None,
        }

    # --- inference -------------------------------------------------------------------------------------------------

    async def infer(self, name: str, version: str | None, body: bytes, header_length: int | None = None) -> Answer:
        """Open Inference Protocol infer. `header_length` is the request's Inference-Header-Content-Length: the
        body's JSON ends there and binary input data follows (serving.binary)."""
        tracker = self.concurrency
        if tracker is not None:
            tracker.started()
        try:
            started = time.perf_counter()
            try:
                model = self.model(name, version)
                header, binary = split(body, header_length)
                request = _parse(header)
                inputs = self._v2_inputs(request, model, BinaryReader(binary))
                wanted = self._requested_outputs(request, model)
                in_binary = binary_outputs(request, wanted)
                request_id = request.get("id")
                if request_id is not None and not isinstance(request_id, str):
                    raise InvalidRequest("id must be a string")
            except (InvalidRequest, ModelNotFound):
                self.metrics.record_client_error()
                raise

            def respond(results: dict[str, np.ndarray]) -> tuple[Answer, bytes]:
                """The answer, and the same answer all in JSON, which is what capture records."""
                response: dict[str, Any] = {"model_name": name, "model_version": model.version}
                if request_id is not None:
                    response["id"] = request_id
                response["outputs"] = encoded = [_encode_output(output, results[output]) for output in wanted]
                as_json = orjson.dumps(response, option=DUMP_OPTIONS)
                if not in_binary:
                    return Answer(as_json), as_json
                blobs: list[bytes] = []
                outputs: list[dict[str, Any]] = []
                for entry in encoded:
                    if entry["name"] in in_binary:
                        blobs.append(raw_bytes(results[entry["name"]]))
                        outputs.append({"name": entry["name"], "datatype": entry["datatype"], "shape": entry["shape"],
                                        "parameters": {"binary_data_size": len(blobs[-1])}})
                    else:
                        outputs.append(entry)
                head = orjson.dumps({**response, "outputs": outputs}, option=DUMP_OPTIONS)
                return Answer(b"".join([head, *blobs]), len(head)), as_json

            answer, captured_response = await self._run(model, lambda: self.batcher.run(model, inputs), respond)
            captured_request = None if self._too_large_to_capture(body) else (
                body if binary is None else _json_request(request, inputs))
            self._observe(captured_request, captured_response, model.version, started, request_id)
            if self.shadow is not None:
                self.shadow.offer(f"/v2/models/{name}/infer", body, header_length)
            return answer
        finally:
            if tracker is not None:
                tracker.finished()

    async def predict(self, body: bytes) -> bytes:
        """`{"instances": [...]}` -> `{"predictions": [...], "model_name", "model_version"}`, for humans."""
        tracker = self.concurrency
        if tracker is not None:
            tracker.started()
        try:
            started = time.perf_counter()
            try:
                model = self.model(self.model_name)
                request = _parse(body)
                instances = request.get("instances")
                if not isinstance(instances, list) or not instances:
                    raise InvalidRequest('request must be {"instances": [...]} with at least one instance')
                if len(model.inputs) != 1:
                    raise InvalidRequest(f"the model has {len(model.inputs)} inputs; use the /v2 infer route")
                spec = model.inputs[0]
                array = _tensor(instances, V2_TO_NUMPY[spec.datatype], "instances")
                _check_shape(array.shape, spec, "instances")
            except (InvalidRequest, ModelNotFound):
                self.metrics.record_client_error()
                raise
            payload = await self._run(
                model, lambda: self.batcher.run(model, {spec.name: array}),
                lambda results: orjson.dumps({"predictions": results[model.predict_output],
                                              "model_name": self.model_name, "model_version": model.version},
                                             option=DUMP_OPTIONS))
            self._observe(None if self._too_large_to_capture(body) else body, payload, model.version, started, None)
            if self.shadow is not None:
                self.shadow.offer("/predict", body)
            return payload
        finally:
            if tracker is not None:
                tracker.finished()

    async def _run(self, model: LoadedModel, call: Callable[[], Awaitable[dict[str, np.ndarray]]],
                   respond: Callable[[dict[str, np.ndarray]], T]) -> T:
        """The model call and the response encoding; whatever they raise is the server's fault, not the client's."""
        try:
            return respond(await call())
        except Exception as exc:
            self.metrics.record_server_error()
            log.error("model call failed", exc_info=exc, extra={"fields": {"version": model.version}})
            reason = str(exc).splitlines()[0][:200] if str(exc) else ""
            raise ModelFailed(f"model version {model.version} failed on this request: {type(exc).__name__}"
                              f"{': ' + reason if reason else ''}") from exc

    def _v2_inputs(self, request: dict[str, Any], model: LoadedModel,
                   binary: BinaryReader) -> dict[str, np.ndarray]:
        entries = request.get("inputs")
        if not isinstance(entries, list) or not entries:
            raise InvalidRequest("request must have a non-empty `inputs` list")
        specs = {spec.name: spec for spec in model.inputs}
        feeds: dict[str, np.ndarray] = {}
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise InvalidRequest(f"inputs[{index}] must be an object with name, shape, datatype and data")
            size = binary_size(entry, f"inputs[{index}]")
            missing = [key for key in ("name", "shape", "datatype", "data") if key not in entry
                       and not (key == "data" and size is not None)]
            if missing:
                raise InvalidRequest(f"inputs[{index}] lacks {', '.join(missing)}")
            name, shape, datatype = entry["name"], entry["shape"], entry["datatype"]
            spec = specs.get(name)
            if spec is None:
                raise InvalidRequest(f"inputs[{index}]: the model has no input {name!r}; its inputs: "
                                     f"{', '.join(specs)}")
            if name in feeds:
                raise InvalidRequest(f"inputs[{index}]: input {name!r} is given twice")
            if datatype != spec.datatype:
                raise InvalidRequest(f"input {name!r}: datatype {datatype!r} does not match the model's "
                                     f"{spec.datatype!r}")
            if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
                raise InvalidRequest(f"input {name!r}: shape must be a list of non-negative integers")
            _check_shape(tuple(shape), spec, f"input {name!r}")
            dtype = V2_TO_NUMPY[spec.datatype]
            if size is not None:
                if "data" in entry:
                    raise InvalidRequest(f"input {name!r}: give either data or parameters.binary_data_size, "
                                         "not both")
                if dtype == np.object_:
                    raise InvalidRequest(f"input {name!r}: BYTES tensors are not supported by this model runtime")
                feeds[name] = binary.take(size, shape, dtype, f"input {name!r}")
                continue
            if not isinstance(entry["data"], list):
                raise InvalidRequest(f"input {name!r}: data must be a list (flat or nested)")
            array = _tensor(entry["data"], dtype, f"input {name!r}")
            if array.size != math.prod(shape):
                raise InvalidRequest(f"input {name!r}: {array.size} values do not fill shape {shape}")
            feeds[name] = array.reshape(shape)
        binary.finish()
        absent = [name for name in specs if name not in feeds]
        if absent:
            raise InvalidRequest(f"missing model input(s): {', '.join(absent)}")
        return feeds

    def _requested_outputs(self, request: dict[str, Any], model: LoadedModel) -> list[str]:
        available = [spec.name for spec in model.outputs]
        requested = request.get("outputs")
        if requested is None:
            return available
        if not isinstance(requested, list) or not all(isinstance(o, dict) and "name" in o for o in requested):
            raise InvalidRequest('outputs must be a list of {"name": ...} objects')
        names = [o["name"] for o in requested]
        unknown = [name for name in names if name not in available]
        if unknown:
            raise InvalidRequest(f"the model has no output(s) {', '.join(map(repr, unknown))}; its outputs: "
                                 f"{', '.join(available)}")
        return names

    def _too_large_to_capture(self, body: bytes) -> bool:
        if self.capture_max_request_bytes is None or len(body) <= self.capture_max_request_bytes:
            return False
        self.capture_skipped_large += 1
        return True

    def _observe(self, body: bytes | None, payload: bytes, version: str, started: float,
                 request_id: str | None) -> None:
        """`body` None: the request is not captured (too large)."""
        latency_ms = (time.perf_counter() - started) * 1000.0
        self.metrics.record_prediction(latency_ms)
        if body is not None:
            self.capture.offer(bytes(body), payload, request_id, version, latency_ms)
