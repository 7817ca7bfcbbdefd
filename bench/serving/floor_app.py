"""The HTTP floor: a bare ASGI app that answers every request with the same small JSON, nothing else."""

BODY = b'{"predictions":[0],"model_name":"example","model_version":"1"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:  # read the request body, as a real handler must
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
