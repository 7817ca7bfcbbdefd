"""The queue worker of an asynchronous endpoint (`python -m serving.worker`) and the batch job's runner.

Requests arrive as objects under the endpoint's input prefix; S3 tells the queue; the worker takes a message, reads
the request object, answers it with the server's own data plane (same model store, hot reload and capture), writes
the answer under the output prefix (the record of completion), publishes to the success or error topic, and only
then deletes the message. Delivery is at least once, answering effectively once: a redelivered message finds its
answer and only deletes itself. See docs/async.md.

Modules: `settings` (WORKER_* variables), `messages` (what a queue message asks for), `answering` (one request in,
one outcome written: shared with the batch job), `queue` (receiving, keeping messages invisible, shutdown).
"""
