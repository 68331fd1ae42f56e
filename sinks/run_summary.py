"""The account of a run, from the ledger and the tables: every input message published is a
clean record stored or a dead letter (or still in flight), and every reading of a stored
envelope is a row, a rejected reading or a duplicate dropped."""

from __future__ import annotations

from sinks.clickhouse.backend import Backend


def summary_lines(backend: Backend, in_flight: int = 0) -> list[str]:
    rows = backend.query("""
SELECT record_type, outcome, count(), sum(readings_in), sum(accepted), sum(duplicates),
       sum(rejected), sum(sink_rejected)
FROM ledger FINAL GROUP BY record_type, outcome ORDER BY outcome, record_type""").rows
    out = ["account of every input message (from the ledger):"]
    messages = dead = 0
    for kind, outcome, count, readings_in, accepted, dups, rejected, sink_rejected in rows:
        messages += int(count)
        if outcome == "deadletter":
            dead += int(count)
            continue
        line = f"{kind:<12} {int(count):>9,} message(s) stored"
        if int(readings_in) != int(count):     # envelopes: the readings add up too
            line += (f"; {int(readings_in):,} readings = {int(accepted) - int(sink_rejected):,}"
                     f" rows + {int(rejected) + int(sink_rejected):,} rejected + "
                     f"{int(dups):,} duplicates dropped")
        elif int(dups):
            line += f" ({int(dups):,} of them duplicates, kept in the ledger only)"
        out.append(line)
    out.append(f"{'rejected':<12} {dead:>9,} message(s) as a whole, to the dead letters")
    total = f"total        {messages:>9,} message(s) accounted for"
    out.append(total + (f", {in_flight:,} still in flight (the next run inserts them)"
                        if in_flight else ", nothing in flight"))
    return out
