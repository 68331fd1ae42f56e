"""The ``ebi`` command line. Each subcommand lives in its own module with ``add(parser)`` and
``run(args, settings) -> int``; the names are a contract that scripts rely on."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from streams.settings import SettingsError, load

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "stack": ("streams.cli.stack", "start, stop or inspect the local Kafka, registry, ClickHouse"),
    "migrate": ("streams.cli.migrate", "create or upgrade the ClickHouse tables"),
    "schemas": ("streams.cli.schemas", "register the Avro schemas or check compatibility"),
    "publish": ("streams.cli.publish", "validate and publish a file of records"),
    "simulate": ("streams.cli.simulate", "publish realistic traffic with injected faults"),
    "worker": ("streams.cli.worker", "run the stream processors (faust worker)"),
    "sink": ("streams.cli.sink", "write the clean topics, alerts and dead letters to ClickHouse"),
    "query": ("streams.cli.query", "run SQL against ClickHouse and print the result"),
    "report": ("streams.cli.report", "print the analyst summary for a time range"),
    "reconcile": ("streams.cli.reconcile", "compare what Kafka holds with what ClickHouse holds"),
    "canary": ("streams.cli.canary", "run a tagged synthetic scenario through the live pipeline"),
    "dead-letters": ("streams.cli.deadletters", "replay dead letters once their cause is fixed"),
    "alarms": ("streams.cli.alarms", "deliver alarms through Alertmanager, acknowledge them"),
    "run": ("streams.cli.run", "the main job: stack, worker, sink and simulator together"),
    "access": ("streams.cli.access", "apply or show who may read and write which topics"),
    "keys": ("streams.cli.keys", "make, register and revoke the senders' signing keys"),
    "verify": ("streams.cli.verify", "re-check the signatures of stored records"),
}


def build_parser(available: dict[str, object]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ebi", description="ebi: emergency basic information "
                                     "ingestion (Avro on Kafka -> faust -> ClickHouse)")
    parser.add_argument("--settings", metavar="FILE", help="TOML settings file (EBI_SETTINGS_FILE)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in available.items():
        _, help_text = COMMANDS[name]
        module.add(sub.add_parser(name, help=help_text, description=help_text))  # type: ignore[attr-defined]
    return parser


def _modules() -> dict[str, object]:
    found: dict[str, object] = {}
    for name, (module_name, _) in COMMANDS.items():
        try:
            found[name] = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
    return found


def main(argv: Sequence[str] | None = None) -> int:
    modules = _modules()
    args = build_parser(modules).parse_args(argv)
    try:
        settings = load(settings_file=args.settings)
    except SettingsError as exc:
        print(f"ebi: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from streams.clients import KafkaUnreachable
    from streams.credentials import CredentialsError
    from streams.signing.keys import SigningError
    from streams.stack import StackError

    try:
        return int(modules[args.command].run(args, settings))  # type: ignore[attr-defined]
    except (StackError, CredentialsError, KafkaUnreachable, SigningError) as exc:
        print(f"ebi {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ebi {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
