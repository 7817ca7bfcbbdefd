"""The fast capture encoder (byte templates at fixed offsets, numpy) against the plain reference (`plain_record`):
for arbitrary chunks of records, every line the fast encoder writes parses to exactly the reference's object, and
the lines are grouped by hour in order. One wrong offset would corrupt every record; this finds it."""

from __future__ import annotations

import json
import re

from hypothesis import example, given, settings
from hypothesis import strategies as st

from serving.capture_records import FIELDS_PER_RECORD, encode_records, plain_record

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

# Request and response bodies: JSON text with every kind of character, and arbitrary bytes (not UTF-8 too).
json_text = st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(),
                         lambda children: st.lists(children) | st.dictionaries(st.text(), children), max_leaves=8)
bodies = st.one_of(json_text.map(lambda value: json.dumps(value, ensure_ascii=False).encode()), st.binary(),
                   st.text(alphabet=st.characters(codec="utf-8")).map(str.encode))
items = st.tuples(
    bodies, bodies,
    st.none() | st.text(),  # the request's id: any string orjson parsed (no lone surrogates), or none
    st.floats(min_value=0, max_value=4_102_444_800),  # seconds since the epoch, to 2100
    st.text(min_size=1),  # model version
    st.floats(min_value=0, max_value=2_000_000),  # latency in ms, beyond what is written in full
)
ONE_MIB_BODY = b'{"inputs":[{"data":[' + b"0.5," * 262_000 + b'1]}]}'


@settings(max_examples=200, deadline=None)
@given(chunk=st.lists(items, min_size=1, max_size=12), model_name=st.text())
@example(chunk=[(b"", b"", "", 0.0, "1", 0.0)], model_name="")
@example(chunk=[(ONE_MIB_BODY, b'{"outputs":[]}', 'q"uo\\te\n\x00\u2028', 1_764_000_000.9995, "v", 999_999.9995)],
         model_name="a")
def test_every_fast_line_parses_to_the_reference_record(chunk, model_name):
    fields = [field for item in chunk for field in item]
    assert len(fields) == FIELDS_PER_RECORD * len(chunk)
    encoded = encode_records(fields, model_name, "candidate")
    lines = b"".join(part.lines for part in encoded).split(b"\n")
    assert lines.pop() == b"" and len(lines) == len(chunk) == sum(part.records for part in encoded)
    for line, item in zip(lines, chunk, strict=True):
        record = json.loads(line)
        event_id = record["eventMetadata"]["eventId"]
        assert UUID4.match(event_id)
        assert record == plain_record(item, model_name, event_id, "candidate")
    hours = [int(item[3] // 3600) for item in chunk]
    expected_runs = [hour for index, hour in enumerate(hours) if index == 0 or hour != hours[index - 1]]
    assert [part.hour for part in encoded] == expected_runs


def test_the_reference_is_the_documented_format():
    record = plain_record((b'{"x":1}', b'{"y":2}', None, 1_764_253_999.1234, "3", 1.25), "a", "e" * 36)
    assert record == {
        "captureData": {
            "endpointInput": {"observedContentType": "application/json", "mode": "INPUT", "data": '{"x":1}',
                              "encoding": "JSON"},
            "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT", "data": '{"y":2}',
                               "encoding": "JSON"}},
        "eventMetadata": {"eventId": "e" * 36, "inferenceTime": "2025-11-27T14:33:19.123Z", "latencyMs": 1.25,
                          "inferenceId": "e" * 36, "modelName": "a", "variantName": "main", "modelVersion": "3"},
        "eventVersion": "0"}
