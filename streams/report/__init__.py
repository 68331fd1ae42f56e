"""The analyst report: one set of SQL sections (:mod:`streams.report.sections`) rendered as
text by ``ebi report`` or as a self-contained HTML briefing (:mod:`streams.report.html`, charts
from :mod:`streams.report.charts`)."""
