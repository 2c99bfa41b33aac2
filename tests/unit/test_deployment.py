"""The Dockerfile and compose.yaml, checked without a Docker engine.

What a build or `docker compose config` would catch is checked here by reading the files:
the image's stages, user, port, health check and command (the same `run.py` the e2e tests
start, with flags that `splitgo.config` accepts); the compose file against the Compose
Specification's JSON schema (tests/unit/compose_spec.json), its interpolation (no secret
in the file, a refusal without one), health checks and start order, and each node's
command line and environment parsed by `splitgo.config` as `run.py` would parse them.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from splitgo import config

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"
SCHEMA = Path(__file__).resolve().parent / "compose_spec.json"

# what .env would hold: made-up values of the right shapes
FILLED_ENV = {
    "POSTGRES_PASSWORD": "test_password-123",
    "SPLITGO_JWT_KEYS": "k1:" + "s" * 48,
    "SPLITGO_OPS_TOKEN": "test-ops-token",
}
REQUIRED = set(FILLED_ENV)
SECRET_WORDS = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|API_KEY|JWT_KEYS|PRIVATE", re.I)


# ── the Dockerfile ───────────────────────────────────────────────────────────────────


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction: continuations joined, comments dropped."""
    found: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        keyword, _, rest = whole.partition(" ")
        found.append((keyword.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends in a line continuation"
    return found


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


def stages(steps: list[tuple[str, str]]) -> list[tuple[str, list[tuple[str, str]]]]:
    """(stage name, its instructions) per FROM."""
    found: list[tuple[str, list[tuple[str, str]]]] = []
    for keyword, rest in steps:
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else words[0]
            found.append((name, []))
        elif found:
            found[-1][1].append((keyword, rest))
    return found


def exec_form(rest: str) -> list[str]:
    value = json.loads(rest)
    assert isinstance(value, list), f"not the exec (JSON) form: {rest}"
    return [str(part) for part in value]


def settings_for(argv: list[str], environ: dict[str, str] | None = None) -> config.Settings:
    """What `python run.py <argv>` would start with, given only `environ`."""
    parser = argparse.ArgumentParser(prog="run.py")
    config.add_flags(parser)
    return config.load(environ or {}, parser.parse_args(argv))


def test_two_stages_on_python_311_slim(dockerfile: list[tuple[str, str]]) -> None:
    """A builder stage makes wheels; the final stage starts again from the slim image."""
    args = dict(rest.partition("=")[::2] for keyword, rest in dockerfile if keyword == "ARG")
    assert args.get("PYTHON_IMAGE") == "python:3.11-slim"
    built = stages(dockerfile)
    assert [name for name, _ in built] == ["builder", "runtime"]
    froms = [rest.split()[0] for keyword, rest in dockerfile if keyword == "FROM"]
    assert froms == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    builder = " ".join(rest for keyword, rest in built[0][1] if keyword == "RUN")
    assert "pip wheel --wheel-dir /wheels -r requirements.txt" in builder


def test_the_builder_wheels_exactly_the_projects_dependencies(
    dockerfile: list[tuple[str, str]], tmp_path: Path
) -> None:
    """The builder's requirements.txt is pyproject.toml's dependencies and the extras EXTRAS
    names (otel by default; its Python run here for real), less the embedded PostgreSQL
    unless EMBEDDED_POSTGRES=yes."""
    builder = dict(stages(dockerfile))["builder"]
    copied = [rest for keyword, rest in builder if keyword == "COPY"]
    assert copied == ["pyproject.toml ./"], "the dependency layer should not depend on the code"
    run = next(rest for keyword, rest in builder if keyword == "RUN")
    words = shlex.split(run)
    assert words[:2] == ["python", "-c"]
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"]
    for extras, added in (("otel", project["optional-dependencies"]["otel"]), ("", [])):
        made = subprocess.run(
            [sys.executable, "-c", words[2]],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
            env={"EXTRAS": extras},
        )
        assert made.stdout.splitlines() == wanted + added
    assert "sed -i '/^embedded-postgres/d' requirements.txt" in run
    assert [line for line in wanted if line.startswith("embedded-postgres")], (
        "pyproject.toml no longer names embedded-postgres: drop the filter"
    )
    args = dict(rest.partition("=")[::2] for keyword, rest in builder if keyword == "ARG")
    # the OpenTelemetry exporter is in by default: compose.yaml sends spans to Jaeger
    assert args == {"EMBEDDED_POSTGRES": "no", "EXTRAS": "otel"}


def test_the_runtime_installs_only_the_built_wheels(dockerfile: list[tuple[str, str]]) -> None:
    """No index, no compiler, no build tools in the final stage: the builder's wheels only,
    mounted rather than copied (no layer keeps them)."""
    runtime = dict(stages(dockerfile))["runtime"]
    runs = [rest for keyword, rest in runtime if keyword == "RUN"]
    installs = [run for run in runs if "pip install" in run]
    assert len(installs) == 1
    assert "--mount=type=bind,from=builder,source=/wheels" in installs[0]
    assert "--no-index" in installs[0]
    assert not any("apt-get" in run or "gcc" in run for run in runs)
    assert not any(keyword == "COPY" and "--from=builder" in rest for keyword, rest in runtime)


def test_it_runs_as_a_non_root_user(dockerfile: list[tuple[str, str]]) -> None:
    """The runtime stage switches to a single non-root user it creates before CMD, and that user
    owns the data directory."""
    runtime = dict(stages(dockerfile))["runtime"]
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    assert len(users) == 1
    user, _, group = users[0].partition(":")
    assert user not in ("0", "root", "")
    assert group not in ("0", "root")
    creates = " ".join(rest for keyword, rest in runtime if keyword == "RUN")
    assert f"--uid {user}" in creates, "USER names a uid the image does not create"
    keywords = [keyword for keyword, _ in runtime]
    assert keywords.index("USER") < keywords.index("CMD")
    # the data folder (generated secrets, mail files) is the user's, and a volume
    env = " ".join(rest for keyword, rest in runtime if keyword == "ENV")
    assert "SPLITGO_DATA_DIR=/var/lib/splitgo" in env
    assert "chown splitgo:splitgo /var/lib/splitgo" in creates


def test_port_and_health_check(dockerfile: list[tuple[str, str]]) -> None:
    """EXPOSE 8080 (run.py's default port) and a HEALTHCHECK on /healthz with Python, as
    the slim image has no curl."""
    exposed = [rest for keyword, rest in dockerfile if keyword == "EXPOSE"]
    assert exposed == [str(config.Settings().port)]
    checks = [rest for keyword, rest in dockerfile if keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    options, _, command = checks[0].partition("CMD ")
    assert "--interval=" in options
    assert "--timeout=" in options
    argv = exec_form(command)
    assert argv[:2] == ["python", "-c"]
    assert "/healthz" in argv[2]
    assert "curl" not in argv[2]
    assert "wget" not in argv[2]
    compile(argv[2], "<healthcheck>", "exec")  # the one-liner is valid Python


def test_the_command_is_run_py_with_flags_it_accepts(dockerfile: list[tuple[str, str]]) -> None:
    """The image starts the same `run.py` the e2e tests start; its flags parse."""
    commands = [rest for keyword, rest in dockerfile if keyword == "CMD"]
    assert len(commands) == 1
    argv = exec_form(commands[0])
    assert argv == ["python", "run.py", "--host", "0.0.0.0"]
    assert not [rest for keyword, rest in dockerfile if keyword == "ENTRYPOINT"]
    settings = settings_for(argv[2:])
    assert settings.host == "0.0.0.0"
    assert settings.port == 8080
    assert (ROOT / argv[1]).is_file()


def test_no_secret_is_baked_in(dockerfile: list[tuple[str, str]]) -> None:
    """No ENV or ARG sets a secret, and neither .env nor .data can reach the build."""
    for keyword, rest in dockerfile:
        if keyword in ("ENV", "ARG"):
            for part in shlex.split(rest):
                name = part.partition("=")[0]
                assert not SECRET_WORDS.search(name), f"{keyword} {name} in the Dockerfile"
        if keyword in ("COPY", "ADD"):
            assert ".env" not in rest
            assert ".data" not in rest
            assert ".git" not in rest


def test_what_is_copied_exists_and_the_context_is_an_allow_list(
    dockerfile: list[tuple[str, str]],
) -> None:
    """.dockerignore starts by excluding everything, every COPY source exists and is allowed back
    in, and no .env, .data, .venv or .git entry is."""
    ignore = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ignore[0] == "*", ".dockerignore should start by excluding everything"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for keyword, rest in dockerfile:
        if keyword != "COPY" or rest.startswith("--"):
            continue
        *sources, _target = rest.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file"
            assert source.rstrip("/") in allowed, f"COPY {source}, but .dockerignore drops it"
    assert not any(name.startswith((".env", ".data", ".venv", ".git")) for name in allowed)


# ── compose.yaml ─────────────────────────────────────────────────────────────────────

INTERPOLATION = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\})")


class MissingVariable(ValueError):
    """A `${VAR:?message}` whose variable is unset or empty: compose refuses to start."""


def interpolate(value: Any, environ: dict[str, str]) -> Any:
    """Compose's variable interpolation ($$, ${VAR}, ${VAR:-default}, ${VAR:?error}, and
    the forms without the colon) over every string of a loaded YAML document."""
    if isinstance(value, dict):
        return {key: interpolate(item, environ) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, environ) for item in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        if name is None:
            return "$"
        present = environ.get(name)
        missing = present is None or (
            operator is not None and operator.startswith(":") and not present
        )
        if operator in ("?", ":?") and missing:
            raise MissingVariable(f"{name}: {argument}")
        if operator in ("-", ":-") and missing:
            return argument or ""
        return present or ""

    return INTERPOLATION.sub(one, value)


@pytest.fixture(scope="module")
def compose_raw() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())  # merges << keys
    return loaded


@pytest.fixture(scope="module")
def compose(compose_raw: dict[str, Any]) -> dict[str, Any]:
    """compose.yaml as `docker compose config` sees it with a filled-in .env."""
    resolved: dict[str, Any] = interpolate(compose_raw, FILLED_ENV)
    return resolved


def test_compose_matches_the_compose_specification(
    compose_raw: dict[str, Any], compose: dict[str, Any]
) -> None:
    """compose.yaml validates against the Compose Specification schema both as written and once
    interpolated."""
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    validator = jsonschema_rs.validator_for(json.loads(SCHEMA.read_text()))
    for document in (compose_raw, compose):
        errors = [
            f"{error.instance_path}: {error.message}" for error in validator.iter_errors(document)
        ]
        assert not errors, errors


OBSERVABILITY = {"prometheus", "grafana", "jaeger"}  # tests/unit/test_observability.py


def test_services_images_and_volumes(compose: dict[str, Any]) -> None:
    """Compose runs postgres, redis and two nodes from one image, each keeping data on a declared
    volume (Jaeger keeps recent traces in memory only), with only the nodes publishing ports
    to the network and the observability pages on 127.0.0.1."""
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "node1", "node2"} | OBSERVABILITY
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    for name in ("node1", "node2"):
        assert services[name]["build"] == "."
        assert services[name]["image"] == services["node1"]["image"]
    named = set(compose["volumes"])
    for name, service in services.items():
        mounts = [volume.split(":")[0] for volume in service.get("volumes", [])]
        mounts = [mount for mount in mounts if not mount.startswith("./")]  # files, read-only
        assert mounts or name == "jaeger", f"{name} keeps nothing across restarts"
        assert set(mounts) <= named, f"{name} mounts an undeclared volume"
    assert "--appendonly" in services["redis"]["command"]
    # only the nodes are published; the database and Redis stay on the compose network
    assert "ports" not in services["postgres"]
    assert "ports" not in services["redis"]
    published = {service["ports"][0] for service in (services["node1"], services["node2"])}
    assert published == {"8080:8080", "8081:8080"}
    for name in OBSERVABILITY:
        assert all(port.startswith("127.0.0.1:") for port in services[name]["ports"]), name


def test_health_checks_and_start_order(compose: dict[str, Any]) -> None:
    """Every service reports its health; a node starts once what it needs is healthy, and
    node2 once node1 is ready (node1 brings the schema up to date first)."""
    services = compose["services"]
    for name, service in services.items():
        assert service["healthcheck"]["test"], f"{name} has no health check"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "redis-cli ping" in " ".join(services["redis"]["healthcheck"]["test"])
    for name in ("node1", "node2"):
        check = services[name]["healthcheck"]["test"]
        assert check[:4] == ["CMD", "python", "-c", check[3]]
        assert "/readyz" in check[3]
        compile(check[3], "<healthcheck>", "exec")
        depends = services[name]["depends_on"]
        assert depends["postgres"] == {"condition": "service_healthy"}
        assert depends["redis"] == {"condition": "service_healthy"}
        grace = services[name]["stop_grace_period"]
        assert grace.endswith("s")
        assert float(grace[:-1]) > config.Settings().shutdown_timeout
    assert services["node2"]["depends_on"]["node1"] == {"condition": "service_healthy"}
    assert "depends_on" not in services["postgres"]
    assert "depends_on" not in services["redis"]


def test_each_node_command_parses_as_run_py_would(compose: dict[str, Any]) -> None:
    """The nodes run run.py with flags and an environment that splitgo.config accepts: the
    Redis transport, the compose PostgreSQL and Redis, node2 hosting rides and
    notifications (README, "Running two nodes")."""
    services = compose["services"]
    known = {env for env, _flag, _field, _help in config.OPTIONS}
    started = {}
    for name in ("node1", "node2"):
        command = services[name]["command"]
        assert command[:2] == ["python", "run.py"]
        environment = {key: str(value) for key, value in services[name]["environment"].items()}
        assert set(environment) <= known, set(environment) - known
        settings = settings_for(command[2:], environment)
        assert settings.host == "0.0.0.0"
        assert settings.transport == "redis"
        assert settings.node_id == name
        assert settings.redis_url == "redis://redis:6379/0"
        assert settings.database_url is not None
        assert "@postgres:5432/" in settings.database_url
        assert FILLED_ENV["POSTGRES_PASSWORD"] in settings.database_url
        assert settings.jwt_keys == FILLED_ENV["SPLITGO_JWT_KEYS"]
        assert settings.ops_token == FILLED_ENV["SPLITGO_OPS_TOKEN"]
        assert settings.sandbox_secret is None  # empty: generated into the data volume
        assert settings.otel_endpoint == "http://jaeger:4318"  # OTLP/HTTP, compose network
        # the image's data folder (SPLITGO_DATA_DIR) is the node's volume
        assert f"{name}-data:/var/lib/splitgo" in services[name]["volumes"]
        started[name] = settings
    assert started["node1"].actors is None  # every actor type
    assert started["node2"].actors == ("rides", "notifications")
    assert (
        services["postgres"]["environment"]["POSTGRES_PASSWORD"] == FILLED_ENV["POSTGRES_PASSWORD"]
    )


def test_compose_refuses_to_start_without_each_secret(compose_raw: dict[str, Any]) -> None:
    """Like `docker compose config`, interpolation fails naming the variable when it is
    unset or empty, and the file itself holds no secret."""
    for name in REQUIRED:
        for environ in (
            {k: v for k, v in FILLED_ENV.items() if k != name},
            {**FILLED_ENV, name: ""},
        ):
            with pytest.raises(MissingVariable, match=f"{name}: set {name} in .env"):
                interpolate(compose_raw, environ)
    text = COMPOSE.read_text()
    for value in FILLED_ENV.values():
        assert value not in text


def test_env_example_documents_every_variable_and_holds_no_secret() -> None:
    """.env.example lists every variable compose.yaml reads, each with an empty value."""
    text = COMPOSE.read_text()
    used = {match.group(1) for match in INTERPOLATION.finditer(text) if match.group(1)}
    required = {
        match.group(1)
        for match in INTERPOLATION.finditer(text)
        if match.group(1) and match.group(2) in ("?", ":?")
    }
    assert required == REQUIRED
    lines = [
        line.strip()
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    documented = dict(line.partition("=")[::2] for line in lines)
    assert set(documented) == used
    assert all(value == "" for value in documented.values()), "no value belongs in the example"
