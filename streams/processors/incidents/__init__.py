"""Incident reports: the reporting rules a regional system meets, and their clocks.

- :mod:`.processor`: one report at a time: validation and stage order (dead letters:
  STAGE_ORDER and the record checks), deduplication by report id, timeliness measured at
  the later of ``reported_at`` and the broker's receipt (LATE, RECEIVED_LATE), grading and
  concealment (SUSPECTED_CONCEALMENT), figure changes (FIGURE_JUMP, FIGURE_DROP,
  CASUALTIES_FELL, LATE_CASUALTY_CHANGE), the chain (REPEATED_INITIAL, REPORT_AFTER_FINAL)
  and escalation (ESCALATION_REQUIRED);
- :mod:`.grading`: Decree 493 levels for accidents, the relief plan's response levels for
  disasters;
- :mod:`.deadlines`: when each report is due;
- :mod:`.clocks`: the alerts raised when nothing arrives (REPORT_DUE_SOON, REPORT_OVERDUE,
  DAILY_REPORT_OVERDUE, ESCALATION_OVERDUE), ``next_due`` for the worker's timer, and ended
  incidents leaving the state table after the horizon;
- :mod:`.state`: the state layout (:class:`IncidentState`).

A report after the FINAL report does not reopen the incident: the final report is the
verified account (核报). A later FOLLOW_UP or INITIAL is stored and flagged
REPORT_AFTER_FINAL, its figures become the incident's latest, and no clock restarts; a
SUPPLEMENTARY report (casualty changes within the window) is expected and not flagged, and a
corrected final report is another FINAL. Every rule is described for senders in
docs/regional-systems.md, and its numbers are in the policy with their sources.

A report id seen before under other coordinates is a duplicate: it is ledgered on the clean
topic with ``duplicate=true`` and changes nothing. A follow-up with a new report id is not a
duplicate: it advances the incident. States written before these field names are converted
when first read (:mod:`streams.processors.layouts`), and states written before the
reporting rules get their new fields from :func:`.state.complete`.
"""

from streams.processors.common import LEVELS
from streams.processors.incidents.clocks import IncidentBook, IncidentClock, IncidentClocks
from streams.processors.incidents.processor import IncidentProcessor
from streams.processors.incidents.state import IncidentState, complete, new_incident_state

__all__ = ["LEVELS", "IncidentBook", "IncidentClock", "IncidentClocks", "IncidentProcessor",
           "IncidentState", "complete", "new_incident_state"]
