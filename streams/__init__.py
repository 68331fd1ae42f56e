"""ebi stream processing: settings, the local stack, processors, the faust app and the CLI."""

__version__ = "0.1.0"
