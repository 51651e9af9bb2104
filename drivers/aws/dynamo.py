"""aws-dynamo: procx runs PartiQL statements to take and clear work; pushx puts one JSON item.

Fixes over the original (procx.md §4.3, §7.2 #20, §7.3 #24, §7.7 #42/#44; pushx.md §4.2):
- clear/fail templates are bound `?` parameters of the statement (never text spliced into PartiQL): a bare
  `{{0.id}}` becomes one typed parameter, a quoted literal holding templates ('{{0.id}}') one string parameter.
  A value like `x' OR 'a'='a` stays data.
- every item is its own work: the items of one statement are the payload and the templates' data for that item
  only (the original appended every item ever read, so a daemon's payloads and clears included old jobs).
- with -aws-dynamo-retrieve-field the field is taken from the first item (the original evaluated it on every
  item and kept the last, and its clear/fail templates then saw no data); clear/fail templates still see the
  items array, so `{{0.id}}` is the item the payload came from. An empty field result is "no work".
- -aws-role-arn / PROCX_AWS_ROLE_ARN are read like the other aws drivers (the original read PROCX_AWS_SQS_ROLE_ARN).
- with unmarshalling off, attribute values are DynamoDB's own JSON form ({"S":"x"}), without the Go SDK's
  null type keys.
- pushx keeps numbers exact (decimal, not float64) and stores an empty string as "" (the original stored NULL).

Attribute values are converted here (as boto3's TypeSerializer/TypeDeserializer do), so that with plain
credentials the statements go through the small SigV4 client (drivers/aws/wire.py) and pushx starts without
importing boto3.
"""

from __future__ import annotations

import base64
import decimal
import json
from decimal import Decimal

from core.errors import ProviderError
from core.options import PROCX, PUSHX, Delivery, DriverSpec, Option
from core.template import bind, go_json, select
from core.work import Sink, Source, Work
from drivers.aws.common import AWS_OPTIONS, EXTRA, REQUIRES, api, error_code
from drivers.aws.common import fail as aws_fail

NAME = "aws-dynamo"


def _validate(config) -> None:
    if config.side == PROCX:
        if not config["aws-dynamo-retrieve-query"]:
            raise ValueError("-aws-dynamo-retrieve-query is required")
        if config["aws-dynamo-limit"] < 0:
            raise ValueError("-aws-dynamo-limit: must be 0 or more")
    elif not config["aws-dynamo-table"]:
        raise ValueError("-aws-dynamo-table is required")


SPEC = DriverSpec(
    "aws-dynamo",
    "a DynamoDB table: items selected by a PartiQL statement are the work",
    [
        *AWS_OPTIONS,
        Option("aws-dynamo-retrieve-query", sides=PROCX, help="PartiQL statement selecting the work items"),
        Option("aws-dynamo-retrieve-field", sides=PROCX,
               help="GJSON path applied to the first item to form the payload (empty: the items as a JSON array)"),
        Option("aws-dynamo-clear-query", sides=PROCX,
               help="PartiQL statement run after success; {{path}} takes values from the items (bound as ? "
                    "parameters; empty: none)"),
        Option("aws-dynamo-fail-query", sides=PROCX,
               help="PartiQL statement run after failure; {{path}} takes values from the items (bound as ? "
                    "parameters; empty: none)"),
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
    source="drivers.aws.dynamo:DynamoSource",
    sink="drivers.aws.dynamo:DynamoSink",
    extra=EXTRA,
    requires=REQUIRES,
    validate=_validate,
    family="aws",
    delivery=Delivery(
        "at-least-once (as the statements implement it)",
        hold="none by itself: the items stay selected until the clear statement changes them (a dead procx leaves "
             "them for the next); two procx may take the same items unless the statements claim them",
        fail="-aws-dynamo-fail-query (empty: the items stay and are offered again)",
        pushx="PutItem acknowledged (replaces an item with the same key)",
        tested="emulator: moto 5.2.5 server (moto ignores Limit and NextToken)",
    ),
)


TARGET = "DynamoDB_20120810"  # the JSON protocol's target prefix
# DynamoDB numbers: 38 significant digits, exponent -130..125; anything that would be rounded is refused
NUMBERS = decimal.Context(Emin=-128, Emax=126, prec=38, traps=[decimal.Clamped, decimal.Overflow, decimal.Inexact,
                                                                decimal.Rounded, decimal.Underflow])


def marshal(value: object) -> dict:
    """A JSON value (numbers as Decimal) -> a DynamoDB attribute value."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, Decimal):
        number = str(NUMBERS.create_decimal(value))
        if number in ("Infinity", "-Infinity", "NaN"):
            raise TypeError("Infinity and NaN not supported")
        return {"N": number}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, list):
        return {"L": [marshal(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {k: marshal(v) for k, v in value.items()}}
    raise TypeError(f"{type(value).__name__} values are not supported (numbers must be exact decimals)")


def _number(text: str) -> int | float:
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() else float(value)


def _bytes(value: str | bytes) -> bytes:
    """A binary value: base64 text on the wire, bytes from boto3."""
    return value if isinstance(value, bytes) else base64.b64decode(value)


def unmarshal(attribute: dict) -> object:
    """A DynamoDB attribute value -> plain JSON-ready data: exact ints, floats, sorted lists for sets, bytes."""
    [(kind, value)] = attribute.items()
    if kind in ("S", "BOOL"):
        return value
    if kind == "NULL":
        return None
    if kind == "N":
        return _number(value)
    if kind == "B":
        return _bytes(value)
    if kind == "M":
        return {k: unmarshal(v) for k, v in value.items()}
    if kind == "L":
        return [unmarshal(v) for v in value]
    convert = {"SS": str, "NS": _number, "BS": _bytes}[kind]
    return sorted((convert(v) for v in value), key=lambda v: (str(type(v)), v))


def _raw(value: object) -> object:
    """The attribute-value structure as JSON-ready data (binary values as bytes -> base64 by go_json)."""
    if isinstance(value, dict):
        return {k: _raw(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_raw(v) for v in value]
    return value


def _attribute(value: object) -> dict:
    """A bound template value -> a DynamoDB attribute value."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float)):
        return {"N": str(value) if isinstance(value, int) else repr(value)}
    return {"S": str(value)}


class DynamoSource(Source):
    db = None

    def open(self) -> None:
        self.db = api(self.config, "dynamodb", TARGET)
        self.errors, self.endpoint = self.db.errors, self.db.endpoint_url

    def get(self, wait: float) -> Work | None:
        c = self.config
        args: dict = {"Statement": c["aws-dynamo-retrieve-query"]}
        if c["aws-dynamo-limit"] > 0:
            args["Limit"] = int(c["aws-dynamo-limit"])
        if c["aws-dynamo-next-token"]:
            args["NextToken"] = c["aws-dynamo-next-token"]
        try:
            response = self.db.call("ExecuteStatement", args)
        except self.errors as exc:
            raise self._failed("cannot run the retrieve query", exc) from None
        raw = response.get("Items", [])
        if not raw:
            return None
        if c["aws-dynamo-unmarshal-json"]:
            items = [{k: unmarshal(v) for k, v in item.items()} for item in raw]
        else:
            items = [_raw(item) for item in raw]
        if c["aws-dynamo-include-next-token"]:
            token = response.get("NextToken")
            for item in items:
                item["_nextToken"] = token
        document = go_json(items)
        field = c["aws-dynamo-retrieve-field"]
        if field:
            text = select(go_json(items[0]), field)
            if not text:
                return None
            payload = text.encode()
        else:
            payload = document.encode()
        first = items[0]
        ident = first.get("id") if isinstance(first, dict) else None
        return Work(payload, None if ident is None else str(ident), handle=document,
                    meta={"items": len(items), "next_token": response.get("NextToken")})

    def _failed(self, what: str, exc: BaseException) -> ProviderError:
        if error_code(exc) == "ResourceNotFoundException":
            return ProviderError(f"driver {NAME}: {what}: table not found at {self.endpoint} "
                                 f"({exc.response['Error'].get('Message', '')})")
        return aws_fail(self.config, what, exc, self.endpoint)

    def _run(self, phase: str, document: str) -> None:
        statement = self.config[f"aws-dynamo-{phase}-query"]
        if not statement:
            return
        query, params = bind(statement, document, "qmark")
        args: dict = {"Statement": query}
        if params:
            args["Parameters"] = [_attribute(p) for p in params]
        try:
            self.db.call("ExecuteStatement", args)
        except self.errors as exc:
            raise self._failed(f"cannot run the {phase} query", exc) from None

    def clear(self, work: Work) -> None:
        self._run("clear", work.handle)

    def fail(self, work: Work) -> None:
        self._run("fail", work.handle)

    def close(self) -> None:
        if self.db is not None:
            self.db.close()


class DynamoSink(Sink):
    db = None

    def open(self) -> None:
        self.db = api(self.config, "dynamodb", TARGET)
        self.errors, self.endpoint = self.db.errors, self.db.endpoint_url

    def close(self) -> None:
        if self.db is not None:
            self.db.close()

    def push(self, payload: bytes) -> str | None:
        table = self.config["aws-dynamo-table"]
        try:
            item = json.loads(payload, parse_float=Decimal, parse_int=Decimal)
        except (ValueError, RecursionError) as exc:
            raise ProviderError(f"driver {NAME}: the payload is not a JSON object ({exc})") from None
        if not isinstance(item, dict):
            raise ProviderError(f"driver {NAME}: the payload must be a JSON object (got {type(item).__name__})")
        try:
            marshalled = {k: marshal(v) for k, v in item.items()}
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise ProviderError(f"driver {NAME}: the item cannot be stored in DynamoDB: {exc}") from None
        try:
            self.db.call("PutItem", {"TableName": table, "Item": marshalled})
        except self.errors as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise ProviderError(f"driver {NAME}: table {table!r} does not exist (at {self.endpoint})") from None
            raise aws_fail(self.config, f"cannot put the item into table {table!r}", exc, self.endpoint) from None
        ident = item.get("id")
        return None if ident is None else str(ident)
