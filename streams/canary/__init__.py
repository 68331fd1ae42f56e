"""``ebi canary``: synthetic monitoring, an operations tool over the running pipeline (the
scenario in :mod:`.scenario`, publishing, reading back and judging in :mod:`.run`)."""
