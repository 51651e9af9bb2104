"""aws-dynamo against the moto server: the conformance suite over a table per test, whose statements make a queue
(items with status 'pending' are the work, the clear statement marks the item 'done'), plus the fixes: bound
PartiQL parameters (an injection attempt stays data), per-item state, unmarshalling, pushx with exact numbers,
the role variable (⚠ #20) and clear errors.

Gaps of the emulator (moto 5.2.5), and how the tests live with them:
- moto ignores Limit and never returns a NextToken, so every statement returns all matching items; the queue's
  work is therefore the first item (-aws-dynamo-retrieve-field body) and `{{0.id}}` in the clear statement names
  that same item. -aws-dynamo-limit/-aws-dynamo-next-token are passed through but cannot be verified here.
- moto fails (HTTP 500) on `DELETE ... WHERE id = ?` and on `?` inside INSERT values, so the clear statement is
  an UPDATE (bound parameters work there, as in SELECT).
- the suite pushes raw bytes; this driver's pushx takes a JSON object, so the Backend wraps each payload as
  {"id", "status", "body"} (through the real pushx); payloads that are not UTF-8 text (NUL + 0xff, the 0-255
  bytes, the 1 MiB binary one) cannot be a JSON string and are skipped, and an empty body is "no work".
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from core import api
from core.errors import ProviderError
from tests.conformance import PAYLOADS, Backend, Conformance
from tests.drivers.cloud.conftest import Moto, free_port
from tests.support import run

NOT_TEXT = {"nul-bytes", "non-utf8", "one-mib"}


def make_table(moto: Moto, unique: str) -> str:
    name = f"procx-{unique}"
    moto.client("dynamodb").create_table(
        TableName=name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    return name


def scan(moto: Moto, table: str) -> list[dict]:
    return moto.client("dynamodb").scan(TableName=table)["Items"]


def put(moto: Moto, table: str, **item: dict) -> None:
    moto.client("dynamodb").put_item(TableName=table, Item=item)


class DynamoBackend(Backend):
    driver = "aws-dynamo"
    supports_empty = False
    ordered = False  # moto returns items in its own order
    redelivery_wait = 0.5

    def __init__(self, moto: Moto, table: str) -> None:
        self.moto = moto
        self.table = table

    def common_args(self) -> list[str]:
        return ["-driver", "aws-dynamo"]

    def push_args(self, n: int) -> list[str]:
        return ["-aws-dynamo-table", self.table]

    def procx_args(self) -> list[str]:
        return ["-aws-dynamo-retrieve-query", f"SELECT * FROM \"{self.table}\" WHERE status = 'pending'",
                "-aws-dynamo-retrieve-field", "body", "-aws-dynamo-limit", "1",
                "-aws-dynamo-clear-query", f"UPDATE \"{self.table}\" SET status = 'done' WHERE id = {{{{0.id}}}}"]

    @staticmethod
    def item(payload: bytes) -> bytes:
        return json.dumps({"id": uuid.uuid4().hex, "status": "pending", "body": payload.decode()}).encode()

    def pushx(self, payload: bytes, n: int = 0) -> None:
        super().pushx(self.item(payload), n)

    @property
    def api_items(self) -> tuple[bytes, ...]:  # items whose body is what procx passes on
        return self.item(b"a"), self.item(b"b")

    def pending(self) -> int:
        return sum(1 for item in scan(self.moto, self.table) if item["status"]["S"] == "pending")

    def env(self) -> dict[str, str]:
        return self.moto.env()


class TestDynamoConformance(Conformance):
    @pytest.fixture
    def backend(self, aws: Moto, unique: str) -> DynamoBackend:
        return DynamoBackend(aws, make_table(aws, unique))

    @pytest.mark.parametrize("name", list(PAYLOADS))
    def test_round_trip_byte_for_byte(self, backend: Backend, name: str) -> None:
        if name in NOT_TEXT:
            pytest.skip("the work is a JSON string attribute: only UTF-8 text round-trips")
        super().test_round_trip_byte_for_byte(backend, name)

    def test_child_receives_payload_on_stdin(self, backend: Backend, tmp_path: Path) -> None:
        payload = PAYLOADS["unicode"] + b"\n\x00\t\"quoted\" <x>&"
        backend.pushx(payload)
        out = tmp_path / "got"
        done = backend.procx("sh", "-c", f"cat > {out}", extra=("-pass-work-as-stdin",))
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        assert out.read_bytes() == payload
        assert backend.pending() == 0


def status(moto: Moto, table: str) -> dict[str, str]:
    return {item["id"]["S"]: item["status"]["S"] for item in scan(moto, table)}


def test_templates_are_bound_parameters_and_an_injection_stays_data(aws: Moto, unique: str) -> None:
    table = make_table(aws, unique)
    evil = "x' OR 'a'='a"
    put(aws, table, id={"S": evil}, status={"S": "pending"}, note={"S": "'; DELETE FROM t; --"})
    put(aws, table, id={"S": "other"}, status={"S": "waiting"})
    args = ["-driver", "aws-dynamo", "-aws-dynamo-retrieve-query", f"SELECT * FROM \"{table}\" WHERE status = "
            "'pending'", "-aws-dynamo-clear-query",
            f"UPDATE \"{table}\" SET status = 'done', note = '{{{{0.note}}}} (seen)' WHERE id = '{{{{0.id}}}}'"]
    done = run("procx", *args, "true", env=aws.env())
    assert done.returncode == 0, done.stderr
    assert status(aws, table) == {evil: "done", "other": "waiting"}
    notes = {i["id"]["S"]: i.get("note", {}).get("S") for i in scan(aws, table)}
    assert notes[evil] == "'; DELETE FROM t; -- (seen)"


def test_each_item_is_its_own_work_nothing_accumulates(aws: Moto, unique: str) -> None:
    table = make_table(aws, unique)
    for ident in ("a", "b"):
        put(aws, table, id={"S": ident}, status={"S": "pending"})
    args = ["-driver", "aws-dynamo", "-aws-dynamo-retrieve-query", f"SELECT id FROM \"{table}\" WHERE status = "
            "'pending'", "-aws-dynamo-clear-query", f"UPDATE \"{table}\" SET status = 'done' WHERE id = {{{{0.id}}}}"]
    payloads = []
    for work in api.consume(args):
        payloads.append(json.loads(work.payload))
        work.clear()
    # moto ignores Limit: the first statement sees both items, the second only the one left (no old items)
    assert len(payloads) == 2
    assert len(payloads[1]) == 1
    assert payloads[1][0] in payloads[0]
    assert set(status(aws, table).values()) == {"done"}


def test_fail_query_runs_on_failure(aws: Moto, unique: str) -> None:
    table = make_table(aws, unique)
    put(aws, table, id={"S": "j"}, status={"S": "pending"}, work={"S": "w"})
    args = ["-driver", "aws-dynamo", "-aws-dynamo-retrieve-query", f"SELECT * FROM \"{table}\" WHERE status = "
            "'pending'", "-aws-dynamo-retrieve-field", "work",
            "-aws-dynamo-fail-query", f"UPDATE \"{table}\" SET status = 'failed' WHERE id = {{{{0.id}}}}"]
    assert run("procx", *args, "sh", "-c", "exit 4", env=aws.env()).returncode == 4
    assert status(aws, table) == {"j": "failed"}


def test_unmarshalled_items_are_plain_go_json(aws: Moto, through: dict[str, str], unique: str) -> None:
    table = make_table(aws, unique)
    put(aws, table, id={"S": "a<b"}, n={"N": "12345678901234567890"}, f={"N": "1.50"}, ok={"BOOL": True},
        none={"NULL": True}, m={"M": {"z": {"S": "1"}, "a": {"L": [{"N": "2"}, {"S": "x"}]}}},
        ss={"SS": ["b", "a"]}, bin={"B": b"\x00\xff"}, ns={"NS": ["10", "2.5", "3"]}, bs={"BS": [b"\x02", b"\x01"]})
    args = ["-driver", "aws-dynamo", "-aws-dynamo-retrieve-query", f"SELECT * FROM \"{table}\""]
    assert api.procx(args) == (b'[{"bin":"AP8=","bs":["AQ==","Ag=="],"f":1.5,"id":"a\\u003cb","m":{"a":[2,"x"],'
                               b'"z":"1"},"n":12345678901234567890,"none":null,"ns":[2.5,3,10],"ok":true,'
                               b'"ss":["a","b"]}]')
    raw = json.loads(api.procx([*args, "-aws-dynamo-unmarshal-json=false", "-aws-dynamo-include-next-token"]))
    assert raw[0]["n"] == {"N": "12345678901234567890"}
    assert raw[0]["ok"] == {"BOOL": True}
    assert raw[0]["bin"] == {"B": "AP8="}
    assert raw[0]["_nextToken"] is None


def test_retrieve_field_comes_from_the_first_item_and_empty_is_no_work(aws: Moto, unique: str,
                                                                       tmp_path: Path) -> None:
    table = make_table(aws, unique)
    put(aws, table, id={"S": "j"}, status={"S": "pending"})
    args = ["-driver", "aws-dynamo", "-aws-dynamo-retrieve-query", f"SELECT * FROM \"{table}\"",
            "-aws-dynamo-retrieve-field", "missing"]
    done = run("procx", *args, "touch", str(tmp_path / "ran"), env=aws.env())
    assert (done.returncode, done.stdout) == (0, b"")  # the original ran the child with "null"
    assert not (tmp_path / "ran").exists()


def test_pushx_keeps_numbers_exact_and_nested_values(aws: Moto, through: dict[str, str], unique: str) -> None:
    table = make_table(aws, unique)
    payload = b'{"id": "n1", "big": 12345678901234567890123, "f": 0.1, "e": "", "x": {"l": [1, "s", true, null]}}'
    assert api.pushx(payload, ["-driver", "aws-dynamo", "-aws-dynamo-table", table]) == "n1"
    item = aws.client("dynamodb").get_item(TableName=table, Key={"id": {"S": "n1"}})["Item"]
    assert item["big"] == {"N": "12345678901234567890123"}
    assert item["f"] == {"N": "0.1"}
    assert item["e"] == {"S": ""}
    assert item["x"] == {"M": {"l": {"L": [{"N": "1"}, {"S": "s"}, {"BOOL": True}, {"NULL": True}]}}}
    for number in (b"1" * 39, b"1e127"):  # beyond DynamoDB's 38 digits or its exponents: refused before sending
        with pytest.raises(ProviderError, match="cannot be stored in DynamoDB"):
            api.pushx(b'{"id": "n2", "n": %s}' % number, ["-driver", "aws-dynamo", "-aws-dynamo-table", table])
    assert [i["id"]["S"] for i in scan(aws, table)] == ["n1"]


@pytest.mark.parametrize(("payload", "message"), [(b"[1, 2]", b"must be a JSON object (got list)"),
                                                  (b"{nope", b"is not a JSON object")])
def test_pushx_refuses_what_is_not_a_json_object(aws: Moto, unique: str, payload: bytes, message: bytes) -> None:
    table = make_table(aws, unique)
    done = run("pushx", "-driver", "aws-dynamo", "-aws-dynamo-table", table, input=payload, env=aws.env())
    assert done.returncode == 69
    assert message in done.stderr
    assert scan(aws, table) == []


def test_role_variable_is_read_as_named(aws: Moto, unique: str) -> None:
    """⚠ #20: the original read PROCX_AWS_SQS_ROLE_ARN whenever PROCX_AWS_ROLE_ARN was set."""
    table = make_table(aws, unique)
    put(aws, table, id={"S": "j"})
    args = ["-driver", "aws-dynamo", "-aws-dynamo-retrieve-query", f"SELECT id FROM \"{table}\""]
    role = "arn:aws:iam::123456789012:role/procx-worker"
    assert run("procx", *args, env=aws.env(PROCX_AWS_ROLE_ARN=role)).stdout == b'[{"id":"j"}]'
    done = run("procx", *args, env=aws.env(PROCX_AWS_ROLE_ARN="bad-role", PROCX_AWS_SQS_ROLE_ARN=role))
    assert done.returncode == 69
    assert b"driver aws-dynamo: cannot assume role bad-role" in done.stderr


def test_missing_table_is_a_clear_error(aws: Moto) -> None:
    done = run("procx", "-driver", "aws-dynamo", "-aws-dynamo-retrieve-query", 'SELECT * FROM "procx-none"',
               env=aws.env())
    assert done.returncode == 69
    assert b"driver aws-dynamo: cannot run the retrieve query: table not found" in done.stderr
    done = run("pushx", "-driver", "aws-dynamo", "-aws-dynamo-table", "procx-none", input=b'{"id": "x"}',
               env=aws.env())
    assert done.returncode == 69
    assert b"driver aws-dynamo: table 'procx-none' does not exist" in done.stderr


@pytest.mark.parametrize("tool", ["procx", "pushx"])
def test_unreachable_endpoint_is_one_line_naming_driver_and_endpoint(aws: Moto, tool: str) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    extra = ("-aws-dynamo-retrieve-query", "SELECT * FROM t") if tool == "procx" else ("-aws-dynamo-table", "t")
    done = run(tool, "-driver", "aws-dynamo", *extra, input=b'{"id": "x"}',
               env=aws.env(AWS_ENDPOINT_URL=endpoint, AWS_MAX_ATTEMPTS="1"))
    assert done.returncode == 69, done.stderr
    assert b"driver aws-dynamo" in done.stderr and endpoint.encode() in done.stderr
    assert done.stderr.count(b"\n") == 1


@pytest.mark.parametrize(("tool", "message"), [("procx", b"-aws-dynamo-retrieve-query is required"),
                                               ("pushx", b"-aws-dynamo-table is required")])
def test_bad_settings_are_usage_errors(aws: Moto, tool: str, message: bytes) -> None:
    done = run(tool, "-driver", "aws-dynamo", input=b"{}", env=aws.env())
    assert done.returncode == 2
    assert message in done.stderr
