"""RecordIO framing (pure)."""

import json

import pytest

from actors.local.recordio import Decoder, RecordIOError, encode, encode_json


def test_encode_is_length_newline_bytes():
    assert encode(b"hello") == b"5\nhello"
    assert encode(b"") == b"0\n"
    assert encode("é".encode()) == b"2\n\xc3\xa9"  # bytes, not characters


def test_decoder_handles_split_and_joined_records():
    stream = encode_json({"type": "SUBSCRIBED"}) + encode_json({"type": "HEARTBEAT"})
    decoder = Decoder()
    out = []
    for i in range(len(stream)):  # one byte at a time
        out += decoder.feed(stream[i:i + 1])
    assert [json.loads(r)["type"] for r in out] == ["SUBSCRIBED", "HEARTBEAT"]
    assert decoder.pending == 0
    assert Decoder().feed(stream) == [r for r in out]


def test_decoder_rejects_garbage():
    with pytest.raises(RecordIOError):
        Decoder().feed(b"abc\n{}")
    with pytest.raises(RecordIOError):
        Decoder().feed(b"9" * 30)
