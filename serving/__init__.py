"""The model server every endpoint runs: ONNX models from a versioned repository on EFS, the Open Inference
Protocol (KServe V2) over HTTP, hot reload, and request capture to EFS.

Layers, each replaceable: `settings` -> `runtime` (load, predict) -> `repository` (versions, verify, swap) ->
`dataplane` (transport-independent requests) -> `app` (HTTP, built by `create_app(settings)`) -> `server` (uvicorn
with graceful draining).
"""

__version__ = "0.1.0"
