from sinks.replay import DeadLetterRow, covered_left_out


def row(offset: int, value: bytes, index: int | None) -> DeadLetterRow:
    return DeadLetterRow("p.telemetry", 0, offset, b"gw", value, "UNKNOWN_SENSOR", index, 0)


def test_readings_alone_are_left_out_when_their_whole_message_is_replayed() -> None:
    whole = b"\x00\x00\x00\x00\x03" + b"envelope"
    alone = [row(22, b'{"reading": %d}' % i, i) for i in range(10)]
    rows = [*alone, row(22, whole, 10), row(23, b'{"reading": 0}', 0)]
    assert covered_left_out(rows) == [row(22, whole, 10), row(23, b'{"reading": 0}', 0)]


def test_readings_alone_stay_when_only_they_are_selected() -> None:
    alone = [row(5, b'{"reading": %d}' % i, i) for i in range(3)]
    assert covered_left_out(alone) == alone
