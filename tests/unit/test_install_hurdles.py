"""The install script's answers to the pymesos and pyeoskit hurdles hold inside .venv."""

from __future__ import annotations

import http_parser.http
import http_parser.pyparser


def test_pymesos_uses_the_pure_python_http_parser() -> None:
    import pymesos.process

    assert pymesos.process.HttpParser is http_parser.pyparser.HttpParser
    assert http_parser.http.HttpParser is http_parser.pyparser.HttpParser


def test_pure_parser_reads_a_chunked_mesos_subscribe_answer() -> None:
    # The shape of a Mesos SUBSCRIBE answer: 200, chunked, Mesos-Stream-Id, RecordIO records.
    record = b'{"type":"HEARTBEAT"}'
    framed = str(len(record)).encode() + b"\n" + record
    raw = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
           b"Mesos-Stream-Id: 8e1d7c3a-1111-2222-3333-444455556666\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n"
           + f"{len(framed):x}".encode() + b"\r\n" + framed + b"\r\n")
    parser = http_parser.pyparser.HttpParser()
    assert parser.execute(raw, len(raw)) == len(raw)
    assert parser.is_headers_complete() and parser.is_chunked()
    assert parser.get_status_code() == 200
    assert parser.get_headers()["Mesos-Stream-Id"] == "8e1d7c3a-1111-2222-3333-444455556666"
    assert parser.recv_body() == framed
    assert not parser.is_message_complete()


def test_pyeoskit_signs_with_its_go_core() -> None:
    from pyeoskit import eosapi

    from actors.stack.devchain import DEV_PRIVATE_KEY, DEV_PUBLIC_KEY

    assert eosapi.get_public_key(DEV_PRIVATE_KEY) == DEV_PUBLIC_KEY
