"""The container image definition, checked statically (Docker is not available where the tests run, so the image
is never built here; docs/deploy.md says so): two stages on a slim base, every COPY source present and not
excluded by .dockerignore, the packages' data files inside the wheel stage 1 builds, the ENTRYPOINT/CMD a real
`dergw` command, and the exposed ports and environment overrides the ones the configuration knows."""

from __future__ import annotations

import fnmatch
import json
import tomllib
from pathlib import Path

from gateway.cli import _run, build_parser
from gateway.config import ApiConfig, OcppConfig, load_config

ROOT = Path(__file__).parents[1]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        current += raw.rstrip("\\").strip() + " "
        if not raw.rstrip().endswith("\\"):
            lines.append(current.strip())
            current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_two_stages_on_a_slim_base_running_unprivileged() -> None:
    steps = instructions()
    bases = [args.split()[0] for op, args in steps if op == "FROM"]
    assert len(bases) == 2
    assert all(b.startswith("python:") and b.endswith("-slim") for b in bases)
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    assert [args for op, args in final if op == "COPY"] == ["--from=build /wheels /wheels"]  # no sources in it
    assert [args for op, args in final if op == "USER"] == ["dergw"]


def test_copy_sources_exist_and_are_not_ignored() -> None:
    ignored = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip()]
    sources = [s for op, args in instructions() if op == "COPY" and "--from=" not in args for s in args.split()[:-1]]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source
    # What the wheel needs: pyproject's packages and its readme.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages | {"pyproject.toml", project["project"]["readme"]} <= set(sources)


def test_every_data_file_of_the_packages_is_in_the_wheel() -> None:
    """setuptools puts in the wheel the files each package's package-data globs match (relative to that package's
    directory); the dashboard and the OpenADR definitions must be among them or the image cannot serve them."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    included: set[Path] = set()
    for init in ROOT.glob("*/**/__init__.py"):
        package = init.parent
        name = ".".join(package.relative_to(ROOT).parts)
        if name.split(".")[0] not in ("gateway", "protocols", "mappings"):
            continue
        for pattern in [*data.get("*", []), *data.get(name, [])]:
            included |= {p.relative_to(ROOT) for p in package.glob(pattern) if p.is_file()}
    needed = {
        f.relative_to(ROOT)
        for top in ("gateway", "protocols", "mappings")
        for f in (ROOT / top).rglob("*")
        if f.is_file() and f.suffix not in (".py", ".pyc") and "__pycache__" not in f.parts
    }
    assert needed
    assert needed - included == set()


def test_entrypoint_and_cmd_are_a_dergw_command_and_ports_match_the_defaults() -> None:
    steps = dict(instructions())
    assert json.loads(steps["ENTRYPOINT"]) == ["dergw"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["dergw"] == "gateway.cli:main"
    args = build_parser().parse_args(json.loads(steps["CMD"]))
    assert args.handler is _run
    assert str(args.config) == "/etc/dergw/gateway.toml"
    assert {int(p) for p in steps["EXPOSE"].split()} == {OcppConfig().port, ApiConfig(token="x" * 16).port}
    assert f"http://127.0.0.1:{ApiConfig(token='x' * 16).port}/livez" in steps["HEALTHCHECK"]


def test_environment_overrides_of_the_image_are_ones_the_configuration_applies(tmp_path: Path) -> None:
    parts = [part for op, args in instructions() if op == "ENV" for part in args.split()]
    image_env = dict(part.split("=", 1) for part in parts if part.startswith("DERGW_"))
    assert set(image_env) >= {"DERGW_DATA_DIR", "DERGW_CERTS_DIR", "DERGW_OCPP__HOST", "DERGW_API__HOST"}
    path = tmp_path / "gateway.toml"
    path.write_text('[api]\ntoken = "a-token-long-enough-for-the-api"\n')
    config = load_config(path, environ=image_env)
    assert (config.data_dir, config.certs_dir) == (Path("/var/lib/dergw/data"), Path("/etc/dergw/certs"))
    assert (config.ocpp.host, config.api.host) == ("0.0.0.0", "0.0.0.0")
