import logging

from actors.logfmt import LogfmtFormatter


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("clusterjobs.test", logging.INFO, __file__, 1, msg, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_fields_follow_the_message_in_order() -> None:
    line = LogfmtFormatter().format(_record("service up", service="hdfs", seconds=4.2))
    assert line.split(" ", 1)[0].startswith("ts=")
    assert line.endswith('level=info logger=clusterjobs.test msg="service up" '
                         "service=hdfs seconds=4.2")


def test_values_with_spaces_quotes_and_newlines_are_quoted() -> None:
    line = LogfmtFormatter().format(_record("x", detail='a "b"\nc', empty=""))
    assert 'detail="a \\"b\\"\\nc"' in line
    assert 'empty=""' in line
