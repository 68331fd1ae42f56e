"""Records as they enter ebi: conversion of JSON/CSV rows to Avro-ready dicts with per-field
errors (:mod:`.convert`, :mod:`.reader`) and semantic checks without reference data
(:mod:`.rules`, shared with the stream worker)."""
