"""Stream processors: plain functions and small classes over decoded records.

Nothing here knows about faust or Kafka clients; the worker (:mod:`streams.worker`) feeds
decoded records in, with their source coordinates and the state it keeps in faust tables,
and sends what comes out. Errors are a second output (dead letters), never exceptions that
kill the worker. Times are int epoch milliseconds throughout.
"""
