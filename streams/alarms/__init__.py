"""Alarm delivery: AlarmEvent records (``alarm.events``) to people through Prometheus
Alertmanager.

:mod:`streams.alarms.labels` turns an event into an Alertmanager alert,
:mod:`streams.alarms.forwarder` keeps the active alarms and talks to Alertmanager's API, and
:mod:`streams.alarms.run` feeds it from Kafka (``ebi alarms forward``).
"""
