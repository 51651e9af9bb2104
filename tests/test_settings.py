"""core.settings and core.options in process: Go flag syntax, precedence, variables, env files, conversions."""

from __future__ import annotations

import contextlib
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import registry
from core.errors import UsageError
from core.general import general
from core.options import KINDS, PROCX, PUSHX, DriverSpec, Option, convert, parse_bool, parse_duration, parse_int
from core.settings import Lookup, load, parse_flags

SECRET = "hunter2-very-secret"


def procx(*argv: str, env: dict[str, str] | None = None):
    return load(PROCX, list(argv), env or {})


def pushx(*argv: str, env: dict[str, str] | None = None):
    return load(PUSHX, list(argv), env or {})


def sqlite_args(tmp_path, *more: str) -> list[str]:
    return ["-driver", "sqlite", "-sqlite-path", str(tmp_path / "q.db"), *more]


def usage_error(fn, *args, **kwargs) -> str:
    with pytest.raises(UsageError) as info:
        fn(*args, **kwargs)
    return str(info.value)


class FakeEntryPoint:
    def __init__(self, spec: DriverSpec) -> None:
        self.spec = spec

    def load(self) -> DriverSpec:
        return self.spec


@pytest.fixture
def plugin(monkeypatch):
    """Register extra drivers the way a third-party package does (entry points), for this test only."""

    def register(*specs: DriverSpec) -> None:
        monkeypatch.setattr(registry, "_plugins", {s.name: FakeEntryPoint(s) for s in specs})

    return register


def vault_spec(**kw) -> DriverSpec:
    return DriverSpec("vault", "a test driver with secrets", [
        Option("vault-token", secret=True, help="token"),
        Option("vault-pin", "int", secret=True, help="pin"),
        Option("vault-params", "json", secret=True, help="json"),
    ], source="drivers.local:LocalSource", sink="drivers.local:LocalSink", **kw)


# -- Go flag syntax -----------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["-daemon-interval", "7"], ["-daemon-interval=7"], ["--daemon-interval", "7"], ["--daemon-interval=7"],
])
def test_value_flag_spellings(tmp_path, argv):
    _, config = procx(*sqlite_args(tmp_path), *argv)
    assert config["daemon-interval"] == 7
    assert config.origins["daemon-interval"] in ("-daemon-interval", "--daemon-interval")


@pytest.mark.parametrize("argv, expected", [
    (["-daemon"], True), (["--daemon"], True), (["-daemon=true"], True), (["-daemon=false"], False),
    (["-daemon=1"], True), (["-daemon=0"], False), (["-daemon=T"], True), (["-daemon=F"], False),
    (["-daemon=FALSE"], False), (["-daemon=True"], True), ([], False),
])
def test_bool_flags(tmp_path, argv, expected):
    _, config = procx(*sqlite_args(tmp_path), *argv, "echo")
    assert config["daemon"] is expected
    assert config.command == ["echo"]


def test_daemon_false_with_a_space_makes_false_the_command(tmp_path):
    _, config = procx(*sqlite_args(tmp_path), "-daemon", "false", "echo")
    assert config["daemon"] is True
    assert config.command == ["false", "echo"]


def test_daemon_equals_false_then_command(tmp_path):
    _, config = procx(*sqlite_args(tmp_path), "-daemon=false", "echo")
    assert config["daemon"] is False
    assert config.command == ["echo"]


def test_bad_bool_flag_value(tmp_path):
    message = usage_error(procx, *sqlite_args(tmp_path), "-daemon=maybe")
    assert "-daemon" in message and "maybe" in message


@pytest.mark.parametrize("text, value", [
    ("10", 10), ("0x10", 16), ("0X10", 16), ("0o10", 8), ("010", 8), ("0b10", 2), ("1_000", 1000),
    ("-3", -3), ("+3", 3), ("-010", -8), ("0", 0), ("00", 0), ("0_10", 8),
])
def test_go_integer_literals(tmp_path, text, value):
    assert parse_int(text) == value
    _, config = procx(*sqlite_args(tmp_path), "-daemon-interval", text)
    assert config["daemon-interval"] == value
    _, config = procx(*sqlite_args(tmp_path), env={"PROCX_DAEMON_INTERVAL": text})
    assert config["daemon-interval"] == value


@pytest.mark.parametrize("text", ["08", "0x", "1__0", "0_", "--1", "+-1", "1.5", "", "abc", "1e3"])
def test_bad_integers(text):
    with pytest.raises(ValueError, match="invalid integer"):
        parse_int(text)


def test_parsing_stops_at_the_first_positional(tmp_path):
    _, config = procx(*sqlite_args(tmp_path), "bash", "-c", "echo $X", "-daemon", "--", "-x")
    assert config.command == ["bash", "-c", "echo $X", "-daemon", "--", "-x"]
    assert config["daemon"] is False


def test_double_dash_ends_the_flags(tmp_path):
    _, config = procx(*sqlite_args(tmp_path), "--", "-daemon", "--", "x")
    assert config.command == ["-daemon", "--", "x"]
    assert config["daemon"] is False
    _, config = procx(*sqlite_args(tmp_path), "--")
    assert config.command == []


def test_lone_dash_is_positional(tmp_path):
    _, config = procx(*sqlite_args(tmp_path), "-", "-daemon")
    assert config.command == ["-", "-daemon"]
    assert config["daemon"] is False


def test_value_flag_takes_the_next_word_even_if_it_looks_like_a_flag(tmp_path):
    _, config = procx(*sqlite_args(tmp_path), "-sqlite-queue", "-daemon")
    assert config["sqlite-queue"] == "-daemon"
    assert config["daemon"] is False


def test_repeated_flag_last_wins(tmp_path):
    _, config = procx(*sqlite_args(tmp_path), "-sqlite-queue", "a", "-sqlite-queue=b")
    assert config["sqlite-queue"] == "b"


def test_values_are_not_trimmed(tmp_path):
    _, config = procx(*sqlite_args(tmp_path), "-sqlite-queue", " a b ")
    assert config["sqlite-queue"] == " a b "


def test_flag_missing_its_value(tmp_path):
    assert "flag needs an argument: -sqlite-queue" in usage_error(procx, *sqlite_args(tmp_path), "-sqlite-queue")


@pytest.mark.parametrize("token", ["---daemon", "-=x", "--=x", "-="])
def test_bad_flag_syntax(token):
    assert "bad flag syntax" in usage_error(procx, "-driver", "local", token)


def test_help_and_version_flags():
    parsed, config = procx("-h")
    assert parsed.help and config is None
    parsed, config = procx("--help")
    assert parsed.help and config is None
    parsed, config = procx("-v")
    assert parsed.version and config is None
    parsed, config = procx("--version")
    assert parsed.version and config is None
    parsed, config = procx("-driver", "sqlite", "-h")
    assert parsed.help and config.spec.name == "sqlite"
    parsed, config = pushx("-driver", "fs", "-help")
    assert parsed.help and config.spec.name == "fs"


# -- precedence: flag > variable > env file > default -------------------------------------------------

SOURCES = ["flag", "variable", "env file"]


def _layers(tmp_path, present: list[str], flag: list[str], var: str, values: dict[str, str]):
    argv, env = [], {}
    if "flag" in present:
        argv += [flag[0], values["flag"]]
    if "variable" in present:
        env[var] = values["variable"]
    if "env file" in present:
        path = tmp_path / "profile.env"
        path.write_text(f"{var}={values['env file']}\n")
        argv += ["-env-file", str(path)]
    return argv, env


@pytest.mark.parametrize("present", [SOURCES, SOURCES[1:], SOURCES[2:], []])
def test_precedence_general_option(tmp_path, present):
    values = {"flag": "5", "variable": "6", "env file": "7"}
    argv, env = _layers(tmp_path, present, ["-daemon-interval"], "PROCX_DAEMON_INTERVAL", values)
    _, config = procx(*sqlite_args(tmp_path), *argv, env=env)
    expected = int(values[present[0]]) if present else 0
    assert config["daemon-interval"] == expected
    origin = config.origins["daemon-interval"]
    if not present:
        assert origin == "default"
    elif present[0] == "flag":
        assert origin == "-daemon-interval"
    elif present[0] == "variable":
        assert origin == "PROCX_DAEMON_INTERVAL"
    else:
        assert origin == "PROCX_DAEMON_INTERVAL in the env file"


@pytest.mark.parametrize("present", [SOURCES, SOURCES[1:], SOURCES[2:], []])
def test_precedence_sqlite_option(tmp_path, present):
    values = {"flag": "from-flag", "variable": "from-variable", "env file": "from-file"}
    argv, env = _layers(tmp_path, present, ["-sqlite-queue"], "PROCX_SQLITE_QUEUE", values)
    _, config = procx(*sqlite_args(tmp_path), *argv, env=env)
    assert config["sqlite-queue"] == (values[present[0]] if present else "default")


@pytest.mark.parametrize("present", [SOURCES, SOURCES[1:], SOURCES[2:]])
def test_precedence_fs_option_on_both_tools(tmp_path, present):
    for side, tool in ((PROCX, procx), (PUSHX, pushx)):
        values = {"flag": str(tmp_path / "f"), "variable": str(tmp_path / "v"), "env file": str(tmp_path / "e")}
        var = f"{side.upper()}_FS_FOLDER"
        argv, env = _layers(tmp_path, present, ["-fs-folder"], var, values)
        if "env file" in present:  # the tool's own env-file variable works too
            env[f"{side.upper()}_ENV_FILE"] = argv.pop()
            argv.pop()
        _, config = tool("-driver", "fs", "-fs-key", "k", *argv, env=env)
        assert config["fs-folder"] == values[present[0]]


def test_flag_beats_exported_driver_variable(tmp_path):
    """The tee chain: `pushx -driver sqlite ... -out=- | pushx -driver fs ...` with PUSHX_DRIVER=local exported."""
    _, config = pushx(*sqlite_args(tmp_path), "-out=-", env={"PUSHX_DRIVER": "local"})
    assert config.driver == "sqlite"
    assert config["out"] == "-"


def test_driver_from_variable_and_from_env_file(tmp_path):
    _, config = procx("-sqlite-path", "x.db", env={"PROCX_DRIVER": "sqlite"})
    assert config.driver == "sqlite"
    profile = tmp_path / "p.env"
    profile.write_text("PROCX_DRIVER=sqlite\nPROCX_SQLITE_PATH=x.db\n")
    _, config = procx("-env-file", str(profile), "-sqlite-queue", "q")
    assert (config.driver, config["sqlite-path"], config["sqlite-queue"]) == ("sqlite", "x.db", "q")


def test_empty_variable_counts_as_unset(tmp_path):
    profile = tmp_path / "p.env"
    profile.write_text("PROCX_SQLITE_QUEUE=from-file\n")
    _, config = procx(*sqlite_args(tmp_path), "-env-file", str(profile),
                      env={"PROCX_SQLITE_QUEUE": "", "PROCX_DAEMON": ""})
    assert config["sqlite-queue"] == "from-file"
    assert config["daemon"] is False
    _, config = procx(*sqlite_args(tmp_path), env={"PROCX_DAEMON_INTERVAL": ""})
    assert config["daemon-interval"] == 0


# -- variable names -----------------------------------------------------------------------------------

@pytest.mark.parametrize("var", ["PUSHX_INPUT_STR", "PUSHX_IN"])
def test_irregular_and_derived_variable_for_in(tmp_path, var):
    _, config = pushx(*sqlite_args(tmp_path), env={var: "payload"})
    assert config["in"] == "payload"
    assert config.origins["in"] == var


def test_irregular_name_wins_over_derived_alias(tmp_path):
    _, config = pushx(*sqlite_args(tmp_path), env={"PUSHX_INPUT_STR": "irregular", "PUSHX_IN": "derived"})
    assert config["in"] == "irregular"


@pytest.mark.parametrize("var, option, value", [
    ("PUSHX_INPUT_FILE", "in-file", "data.bin"), ("PUSHX_IN_FILE", "in-file", "data.bin"),
    ("PUSHX_OUTPUT", "out", "-"), ("PUSHX_OUT", "out", "-"),
])
def test_pushx_general_variables(tmp_path, var, option, value):
    _, config = pushx(*sqlite_args(tmp_path), env={var: value})
    assert config[option] == value


def test_irregular_variable_names_in_env_file(tmp_path):
    profile = tmp_path / "p.env"
    profile.write_text("PUSHX_DRIVER=sqlite\nPUSHX_SQLITE_PATH=q.db\nPUSHX_INPUT_STR=from-file\n")
    _, config = pushx("-env-file", str(profile))
    assert config["in"] == "from-file"


def test_option_variable_derivation():
    opt = Option("gcp-pubsub-subscription", env={PROCX: "PROCX_GCP_SUBSCRIPTION"}, aliases=("gcp-sub",))
    assert opt.variables(PROCX) == ("PROCX_GCP_SUBSCRIPTION", "PROCX_GCP_PUBSUB_SUBSCRIPTION", "PROCX_GCP_SUB")
    assert opt.variables(PUSHX) == ("PUSHX_GCP_PUBSUB_SUBSCRIPTION", "PUSHX_GCP_SUB")
    assert opt.variable(PROCX) == "PROCX_GCP_SUBSCRIPTION"
    redis = {o.name: o for o in registry.get("redis-list").options}["redis-tls-skip-verify"]
    assert redis.variables(PROCX) == ("PROCX_REDIS_TLS_INSECURE", "PROCX_REDIS_TLS_SKIP_VERIFY")


def test_flag_alias_sets_the_same_option(plugin):
    spec = DriverSpec("aliased", "alias test", [Option("aliased-name", aliases=("aliased-nom",))],
                      source="drivers.local:LocalSource", sink="drivers.local:LocalSink")
    plugin(spec)
    _, config = procx("-driver", "aliased", "-aliased-nom", "x")
    assert config["aliased-name"] == "x"
    _, config = procx("-driver", "aliased", env={"PROCX_ALIASED_NOM": "y"})
    assert config["aliased-name"] == "y"


# -- booleans from variables --------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["true", "TRUE", "True", "1", "yes", "YES", "Yes", "on", "ON", "t", "y"])
def test_true_words(tmp_path, text):
    _, config = procx(*sqlite_args(tmp_path), env={"PROCX_DAEMON": text})
    assert config["daemon"] is True


@pytest.mark.parametrize("text", ["false", "FALSE", "False", "0", "no", "NO", "off", "Off", "f", "n"])
def test_false_words(tmp_path, text):
    _, config = procx(*sqlite_args(tmp_path), env={"PROCX_DAEMON": text})
    assert config["daemon"] is False


def test_variable_false_does_not_beat_a_flag(tmp_path):
    _, config = procx(*sqlite_args(tmp_path), "-daemon", env={"PROCX_DAEMON": "false"})
    assert config["daemon"] is True


@pytest.mark.parametrize("text", ["maybe", "2", "tru", "enabled", "+"])
def test_garbage_boolean_variable(tmp_path, text):
    message = usage_error(procx, *sqlite_args(tmp_path), env={"PROCX_DAEMON": text})
    assert "-daemon" in message and "PROCX_DAEMON" in message and repr(text) in message


def test_garbage_boolean_in_env_file_names_the_file(tmp_path):
    profile = tmp_path / "p.env"
    profile.write_text("PROCX_HOSTENV=maybe\n")
    message = usage_error(procx, *sqlite_args(tmp_path), "-env-file", str(profile))
    assert "-hostenv" in message and "PROCX_HOSTENV" in message and "env file" in message


@pytest.mark.parametrize("text, value", [("true", True), ("Yes", True), ("ON", True), ("0", False), ("off", False)])
def test_parse_bool(text, value):
    assert parse_bool(text) is value


def test_bad_int_variable_names_flag_and_variable(tmp_path):
    message = usage_error(procx, *sqlite_args(tmp_path), env={"PROCX_DAEMON_INTERVAL": "abc"})
    assert message.startswith("-daemon-interval (PROCX_DAEMON_INTERVAL)")
    assert "'abc'" in message


# -- unknown flags, other drivers, other tool ---------------------------------------------------------

def test_unknown_flag(tmp_path):
    message = usage_error(procx, *sqlite_args(tmp_path), "-no-such-flag-at-all", "x")
    assert message == "flag provided but not defined: -no-such-flag-at-all"


@pytest.mark.parametrize("typo, meant", [("-deamon", "-daemon"), ("-sqlite-pth", "-sqlite-path"),
                                         ("-drivr", "-driver"), ("-pass-work-as-stdn", "-pass-work-as-stdin")])
def test_unknown_flag_did_you_mean(tmp_path, typo, meant):
    message = usage_error(procx, "-driver", "sqlite", typo, "x")
    assert message.startswith(f"flag provided but not defined: {typo}")
    assert f"did you mean {meant}?" in message


def test_flag_of_another_driver_is_accepted_and_listed(tmp_path):
    _, config = procx(*sqlite_args(tmp_path), "-redis-host", "h", "-redis-enable-tls", "-fs-folder=x", "echo", "hi")
    assert config.foreign == ["-fs-folder", "-redis-enable-tls", "-redis-host"]
    assert config.command == ["echo", "hi"]
    assert "redis-host" not in config


def test_flag_of_another_driver_on_pushx(tmp_path):
    _, config = pushx(*sqlite_args(tmp_path), "-fs-key", "k")
    assert config.foreign == ["-fs-key"]


@pytest.mark.parametrize("flag", ["-fs-clear-op", "-sqlite-fail-delay", "-daemon", "-hostenv", "-payload-file"])
def test_procx_only_flag_is_an_error_for_pushx(tmp_path, flag):
    message = usage_error(pushx, "-driver", "fs", "-fs-folder", str(tmp_path), "-fs-key", "k", flag, "x")
    assert f"flag provided but not defined: {flag}" in message


@pytest.mark.parametrize("flag", ["-in", "-in-file", "-out"])
def test_pushx_only_flag_is_an_error_for_procx(tmp_path, flag):
    assert f"flag provided but not defined: {flag}" in usage_error(procx, *sqlite_args(tmp_path), flag, "x")


def test_unknown_driver_did_you_mean():
    message = usage_error(procx, "-driver", "sqlit")
    assert "unknown driver 'sqlit'" in message and "did you mean 'sqlite'?" in message
    assert message.startswith("-driver")
    message = usage_error(pushx, env={"PUSHX_DRIVER": "redis-lst"})
    assert message.startswith("PUSHX_DRIVER") and "did you mean 'redis-list'?" in message


def test_driver_names_are_case_sensitive():
    assert "unknown driver 'SQLite'" in usage_error(procx, "-driver", "SQLite")


def test_no_driver():
    message = usage_error(procx)
    assert "-driver" in message and "PROCX_DRIVER" in message
    assert "PUSHX_DRIVER" in usage_error(pushx, "-in", "x")


def test_missing_required_option():
    message = usage_error(procx, "-driver", "sqlite")
    assert message == "-sqlite-path (PROCX_SQLITE_PATH) is required for driver sqlite"
    message = usage_error(pushx, "-driver", "fs", "-fs-key", "k")
    assert "-fs-folder (PUSHX_FS_FOLDER) is required" in message


def test_driver_rule_across_options(tmp_path):
    message = usage_error(procx, "-driver", "fs", "-fs-folder", str(tmp_path))
    assert "-fs-key" in message
    message = usage_error(procx, "-driver", "fs", "-fs-folder", str(tmp_path), "-fs-key-regex", "(")
    assert "-fs-key-regex" in message
    message = usage_error(procx, "-driver", "fs", "-fs-folder", "d", "-fs-key", "k", "-fs-clear-op", "mv")
    assert "-fs-clear-folder" in message


def test_choices_are_case_insensitive_and_checked(tmp_path):
    _, config = procx("-driver", "fs", "-fs-folder", "d", "-fs-key", "k", "-fs-clear-op", "RM")
    assert config["fs-clear-op"] == "rm"
    message = usage_error(procx, "-driver", "fs", "-fs-folder", "d", "-fs-key", "k", "-fs-clear-op", "delete")
    assert "-fs-clear-op" in message and "mv, rm" in message
    assert "json" in usage_error(procx, *sqlite_args(tmp_path), "-log-format", "yaml")


def test_driver_without_implementation(plugin):
    plugin(DriverSpec("future", "not built yet", [Option("future-url", required=True)]))
    message = usage_error(procx, "-driver", "future")
    assert message == "driver future: the source (procx) side is not implemented yet in this release"
    message = usage_error(pushx, "-driver", "future")
    assert "sink (pushx) side is not implemented yet" in message
    parsed, config = procx("-driver", "future", "-h")  # help still works
    assert parsed.help and config.spec.name == "future"


def test_missing_client_library(plugin):
    plugin(DriverSpec("needy", "needs a library", [], source="drivers.local:LocalSource",
                      requires=("no_such_module_procx_test",), extra="needy"))
    _, config = procx("-driver", "needy")
    message = usage_error(registry.load, config.spec, PROCX)
    assert "no_such_module_procx_test" in message and "pip install 'procx-tui[needy]'" in message


# -- env files ----------------------------------------------------------------------------------------

def test_env_file_flag_and_variable(tmp_path):
    profile = tmp_path / "p.env"
    profile.write_text("# a profile\nPROCX_DRIVER=sqlite\nexport PROCX_SQLITE_PATH='q.db'\n"
                       'PROCX_SQLITE_QUEUE="with spaces"\nPROCX_DAEMON=yes\n')
    for argv, env in (((("-env-file", str(profile))), {}), ((), {"PROCX_ENV_FILE": str(profile)}),
                      ((f"--env-file={profile}",), {})):
        _, config = procx(*argv, env=env)
        assert config.driver == "sqlite"
        assert config["sqlite-path"] == "q.db"
        assert config["sqlite-queue"] == "with spaces"
        assert config["daemon"] is True


def test_env_file_expands_variables_and_stays_out_of_os_environ(tmp_path, monkeypatch):
    monkeypatch.setenv("PROCX_TEST_DB_DIR", str(tmp_path))
    monkeypatch.setenv("QUEUE_FROM_ENV", "expanded")
    profile = tmp_path / "p.env"
    profile.write_text("PUSHX_DRIVER=sqlite\nPUSHX_SQLITE_PATH=${PROCX_TEST_DB_DIR}/q.db\n"
                       "PUSHX_SQLITE_QUEUE=${QUEUE_FROM_ENV}-${PUSHX_DRIVER}\nPUSHX_ONLY_IN_FILE=1\n")
    before = dict(os.environ)
    _, config = load(PUSHX, ["-env-file", str(profile)])
    assert config["sqlite-path"] == f"{tmp_path}/q.db"
    assert config["sqlite-queue"] == "expanded-sqlite"
    assert config.env_file["PUSHX_ONLY_IN_FILE"] == "1"
    assert dict(os.environ) == before
    assert "PUSHX_DRIVER" not in os.environ and "PUSHX_ONLY_IN_FILE" not in os.environ


def test_missing_env_file(tmp_path):
    missing = str(tmp_path / "nope.env")
    message = usage_error(procx, "-env-file", missing)
    assert "-env-file" in message and missing in message
    assert missing in usage_error(procx, env={"PROCX_ENV_FILE": missing})


def test_env_file_cannot_name_another_env_file(tmp_path):
    other = tmp_path / "other.env"
    other.write_text("PROCX_SQLITE_QUEUE=other\n")
    profile = tmp_path / "p.env"
    profile.write_text(f"PROCX_ENV_FILE={other}\nPROCX_DRIVER=sqlite\nPROCX_SQLITE_PATH=q.db\n")
    _, config = procx("-env-file", str(profile))
    assert config["sqlite-queue"] == "default"


# -- secrets ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("flag, text", [("-vault-pin", SECRET), ("-vault-params", "{" + SECRET)])
def test_secret_never_in_error_messages(plugin, flag, text):
    plugin(vault_spec())
    message = usage_error(procx, "-driver", "vault", flag, text)
    assert SECRET not in message
    assert flag in message and "secret" in message
    variable = "PROCX_" + flag[1:].upper().replace("-", "_")
    message = usage_error(procx, "-driver", "vault", env={variable: text})
    assert SECRET not in message and variable in message


def test_secret_in_validation_and_masking(plugin):
    def validate(config):
        if config["vault-token"] == SECRET:
            raise ValueError("-vault-token: rejected")

    plugin(vault_spec(validate=validate))
    message = usage_error(procx, "-driver", "vault", "-vault-token", SECRET)
    assert SECRET not in message and "-vault-token" in message
    _, config = procx("-driver", "vault", "-vault-token", "abc", "-vault-pin", "1234")
    assert sorted(config.secrets()) == ["1234", "abc"]
    masked = config.masked()
    assert masked["vault-token"] == masked["vault-pin"] == "********"
    assert masked["vault-params"] == ""  # unset secrets are shown as unset


# -- conversions --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [
    ("25s", 25.0), ("1m30s", 90.0), ("500ms", 0.5), ("2", 2.0), ("1.5", 1.5), ("1h", 3600.0), ("1.5h", 5400.0),
    ("100us", 1e-4), ("100µs", 1e-4), ("10ns", 1e-8), ("2h45m", 9900.0), ("-1s", -1.0), ("0", 0.0), (" 3s ", 3.0),
])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "1x", "abc", "1m30", "ms", "1..2s", "--1s", "nan", "inf", "-inf",
                                  "1" * 400 + "h"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_duration_options(tmp_path):
    _, config = procx(*sqlite_args(tmp_path), "-grace-period", "1m30s", env={"PROCX_SQLITE_FAIL_DELAY": "500ms"})
    assert config["grace-period"] == 90.0
    assert config["sqlite-fail-delay"] == 0.5
    assert config["sqlite-visibility-timeout"] == 30.0
    message = usage_error(procx, *sqlite_args(tmp_path), "-grace-period", "soon")
    assert message.startswith("-grace-period (PROCX_GRACE_PERIOD)")


@pytest.mark.parametrize("kind, text, value", [
    ("string", "x y", "x y"), ("list", "a,b,,c", ("a", "b", "", "c")), ("list", "", ()),
    ("list", " a , b", (" a ", " b")),
    ("json", '{"a": [1, 2]}', {"a": [1, 2]}), ("json", "", None), ("float", "1.5", 1.5), ("int", "0x1BD", 445),
])
def test_conversions(kind, text, value):
    assert convert(kind, text) == value


def test_render_round_trips():
    for opt, value in ((Option("a", "bool"), True), (Option("b", "list"), ("x", "y")), (Option("c", "int"), 7),
                       (Option("d", "duration"), 90.0), (Option("e", "json"), {"k": 1}), (Option("f", "float"), 0.5)):
        assert opt.convert(opt.render(value)) == value


def test_deeply_nested_json_is_a_value_error():
    with pytest.raises(ValueError, match="invalid JSON"):
        convert("json", "[" * 100_000)


# -- properties ---------------------------------------------------------------------------------------

_LOOKUPS = {side: Lookup(side, None) for side in (PROCX, PUSHX)}
FLAG_WORDS = sorted({f"-{o.name}" for side in (PROCX, PUSHX) for o in general(side)}
                    | {"-h", "-v", "--", "-", "-sqlite-path", "-fs-folder", "-fs-key", "-fs-key-regex", "-daemon=",
                       "--daemon", "-redis-port", "-redis-enable-tls", "-fs-clear-op", "-x", "-=", "---x"})
DRIVER_WORDS = ["sqlite", "fs", "local", "redis-list", "nope"]
ARGV = st.lists(st.one_of(st.text(max_size=12), st.sampled_from(FLAG_WORDS), st.sampled_from(DRIVER_WORDS)),
                max_size=10)


@settings(max_examples=300, deadline=None)
@given(argv=ARGV, side=st.sampled_from([PROCX, PUSHX]))
def test_parse_flags_raises_only_usage_errors(argv, side):
    try:
        parsed = parse_flags(argv, _LOOKUPS[side])
    except UsageError:
        return
    assert parsed.rest == argv[len(argv) - len(parsed.rest):]  # the child command is a suffix, untouched


@settings(max_examples=200, deadline=None)
@given(argv=ARGV, side=st.sampled_from([PROCX, PUSHX]),
       env=st.dictionaries(st.sampled_from(["PROCX_DAEMON", "PROCX_DRIVER", "PUSHX_DRIVER", "PROCX_GRACE_PERIOD",
                                            "PUSHX_INPUT_STR", "PROCX_SQLITE_PATH", "PUSHX_FS_FOLDER"]),
                           st.text(max_size=8), max_size=3))
def test_load_raises_only_usage_errors(argv, side, env):
    with contextlib.suppress(UsageError):
        load(side, argv, env)


@settings(max_examples=500, deadline=None)
@given(kind=st.sampled_from(KINDS), text=st.text(), choices=st.sampled_from([(), ("mv", "rm")]))
def test_conversion_raises_only_value_errors(kind, text, choices):
    with contextlib.suppress(ValueError):
        convert(kind, text, choices)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(min_value=-(2**70), max_value=2**70))
def test_parse_int_reads_every_go_spelling(n):
    sign = "-" if n < 0 else ""
    for text in (str(n), f"{sign}{abs(n):#x}", f"{sign}{abs(n):#o}", f"{sign}0{abs(n):o}", f"{sign}{abs(n):#b}",
                 f"{n:_}"):
        assert parse_int(text) == n, text
