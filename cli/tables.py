"""``dora tables create``: the DynamoDB tables of DESIGN.md §4, idempotent."""

from __future__ import annotations

import argparse

from cli.support import CLI_DYNAMO_ATTEMPTS, CLI_DYNAMO_TIMEOUT_S
from common.dynamo.tables import TableNames, create_tables, make_client
from common.settings import load_settings

HELP = "create the DynamoDB tables (idempotent)"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("create", help="create the tables that are missing; safe to run again")


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    names = TableNames.from_prefix(settings.table_prefix)
    where = settings.dynamodb_endpoint or f"AWS {settings.aws_region}"
    for table, outcome in create_tables(
        make_client(settings, max_attempts=CLI_DYNAMO_ATTEMPTS, timeout_s=CLI_DYNAMO_TIMEOUT_S),
        names,
    ):
        print(f"{outcome:<12} {table}")
    print(f"tables ready at {where}")
    return 0
