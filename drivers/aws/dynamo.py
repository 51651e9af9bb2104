"""aws-dynamo: procx runs PartiQL statements to take and clear work; pushx puts one JSON item."""

from __future__ import annotations

from core.options import PROCX, PUSHX, DriverSpec, Option
from drivers.aws.common import AWS_OPTIONS, EXTRA, REQUIRES

SPEC = DriverSpec(
    "aws-dynamo",
    "a DynamoDB table: items selected by a PartiQL statement are the work",
    [
        *AWS_OPTIONS,
        Option("aws-dynamo-retrieve-query", sides=PROCX, help="PartiQL statement selecting the work items"),
        Option("aws-dynamo-retrieve-field", sides=PROCX,
               help="GJSON path applied to each item to form the payload (empty: the items as a JSON array)"),
        Option("aws-dynamo-clear-query", sides=PROCX,
               help="PartiQL statement run after success; {{path}} takes values from the items (empty: none)"),
        Option("aws-dynamo-fail-query", sides=PROCX,
               help="PartiQL statement run after failure; {{path}} takes values from the items (empty: none)"),
        Option("aws-dynamo-unmarshal-json", "bool", True, sides=PROCX, group="retrieve", advanced=True,
               help="turn DynamoDB attribute values into plain JSON (off: the raw attribute-value structure)"),
        Option("aws-dynamo-limit", "int", sides=PROCX, group="retrieve",
               help="maximum items the statement evaluates (0: no limit)"),
        Option("aws-dynamo-next-token", sides=PROCX, group="retrieve", advanced=True,
               help="pagination token to continue a previous statement (empty: from the start)"),
        Option("aws-dynamo-include-next-token", "bool", sides=PROCX, group="retrieve", advanced=True,
               help='add "_nextToken" (the response token or null) to every item'),
        Option("aws-dynamo-table", sides=PUSHX, help="table to put the JSON item into"),
    ],
    extra=EXTRA,
    requires=REQUIRES,
    family="aws",
)
