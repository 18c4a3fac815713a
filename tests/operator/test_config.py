"""Configuration: embedded defaults, environment overrides, secret references, utility link sections, and the
precise errors `dergw check-config` prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.clock import SystemClock
from gateway.config import ConfigError, GatewayConfig, load_config
from gateway.wiring import configured_adapters, ieee2030_5_config
from protocols.ieee2030_5.config import Ratings
from protocols.openadr3.adapter import OpenAdr3Adapter

LFDI = "3e4f45ab31edfe5b67e343e5e4562e31984e23e5"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def test_an_empty_file_gives_sqlite_in_a_data_dir_and_no_utility_link(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), environ={})
    assert config.database == tmp_path / "data" / "dergw.sqlite"
    assert config.links() == []
    assert configured_adapters(config, SystemClock()) == []


def test_environment_overrides_keys_by_section_and_leaves_client_variables_alone(tmp_path: Path) -> None:
    path = write(tmp_path, "[api]\nport = 8080\n")
    environ = {
        "DERGW_API__PORT": "8081",
        "DERGW_OCPP__COMPRESSION": "false",
        "DERGW_OCPP__HOST": "0.0.0.0",
        "DERGW_DATA_DIR": "/var/lib/dergw",
        "DERGW_API_TOKEN": "read by `dergw directive`, not configuration",
        "PATH": "/bin",
    }
    config = load_config(path, environ=environ)
    assert (config.api.port, config.ocpp.compression, config.ocpp.host) == (8081, False, "0.0.0.0")
    assert config.data_dir == Path("/var/lib/dergw")
    assert config.api.token is None


def test_environment_errors_name_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={"DERGW_OCPP__SECURITY_PROFILE": "9", "DERGW_API__PROT": "1"})
    assert str(err.value).splitlines() == [
        f"{path}: ocpp.security_profile (from DERGW_OCPP__SECURITY_PROFILE): Input should be less than or equal to 3",
        f"{path}: api.prot (from DERGW_API__PROT): Extra inputs are not permitted",
    ]


def test_secrets_come_from_the_environment_or_files(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("client-secret-from-a-file\n")
    path = write(
        tmp_path,
        '[api]\ntoken = "env:OPERATOR_TOKEN"\n'
        '[openadr3]\nvtn_url = "https://vtn.example"\nclient_id = "ven-1"\nclient_secret = "file:secret.txt"\n'
        'ven_name = "gw"\n',
    )
    config = load_config(path, environ={"OPERATOR_TOKEN": "t0ken"})
    assert config.api.bearer() == "t0ken"
    assert config.openadr3 is not None
    assert config.openadr3.client_secret == "client-secret-from-a-file"
    with pytest.raises(ConfigError, match=r"api\.token: environment variable OPERATOR_TOKEN is not set"):
        load_config(path, environ={})
    (tmp_path / "secret.txt").unlink()
    with pytest.raises(ConfigError, match=r"openadr3\.client_secret: cannot read .*secret\.txt"):
        load_config(path, environ={"OPERATOR_TOKEN": "t0ken"})


def test_utility_sections_build_their_adapters(tmp_path: Path) -> None:
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_text("")
    path = write(
        tmp_path,
        f"""
[ieee2030_5]
server = "https://utility.example:8443"
ca = "ca.pem"
cert = "client.pem"
key = "client.key"
register = false
[[ieee2030_5.devices]]
name = "site-a"
lfdi = "{LFDI}"
sfdi = 167261211391
target = {{ scope = "group", ids = ["site-a"] }}
stations = ["CS1"]
ratings = {{ max_w = 22000, max_charge_w = 22000 }}

[openadr3]
vtn_url = "https://vtn.example"
client_id = "ven-1"
client_secret = "s"
ven_name = "gw"
resources = {{ site-a = {{ scope = "group", ids = ["site-a"] }} }}
""",
    )
    config = load_config(path, environ={})
    assert config.links() == ["ieee2030_5", "openadr3"]
    assert config.ieee2030_5 is not None
    _, oa3 = configured_adapters(config, SystemClock())
    assert isinstance(oa3(None), OpenAdr3Adapter)  # type: ignore[arg-type]  # it reads the fleet only when polled
    sep = ieee2030_5_config(config.ieee2030_5)  # the adapter itself loads the (here empty) TLS files
    assert (sep.register, sep.ca, sep.devices[0].stations) == (False, tmp_path / "ca.pem", ("CS1",))
    assert sep.devices[0].ratings == Ratings(22000, 22000)


def test_check_config_lists_every_problem_with_its_location(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path,
        '[ocpp]\nsecurity_profile = 2\ntls_cert = "server.pem"\ntls_key = "server.key"\n'
        '[ieee2030_5]\nserver = "http://plain"\nca = "ca.pem"\ncert = "c.pem"\nkey = "c.key"\ndevices = []\n'
        "[iec61850]\nport = 70000\n",
    )
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert f"{path}: ieee2030_5.server: String should match pattern '^https://'" in err
    assert f"{path}: ieee2030_5.devices: List should have at least 1 item after validation, not 0" in err
    assert f"{path}: iec61850.port: Input should be less than or equal to 65535" in err
    path.write_text('[ocpp]\nsecurity_profile = 2\ntls_cert = "server.pem"\ntls_key = "server.key"\n')
    assert main(["check-config", str(path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{path}: ocpp.tls_cert: no such file {tmp_path / 'server.pem'}",
        f"{path}: ocpp.tls_key: no such file {tmp_path / 'server.key'}",
    ]
    path.write_text('[[stations]]\nid = "CS1"\n[iec61850]\nport = 0\n')
    assert main(["check-config", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: ok (1 stations; utility links: iec61850)\n"


def test_the_iec61850_package_is_loaded_only_when_configured(tmp_path: Path) -> None:
    """Its binding is an optional GPL extra: a gateway without [iec61850] must not import it."""
    code = (
        "import sys; from pathlib import Path; from gateway.runtime import Gateway; from gateway.config import "
        f"GatewayConfig; g = Gateway.build(GatewayConfig(data_dir=Path({str(tmp_path)!r}))); "
        "print(sorted(m for m in sys.modules if 'iec61850' in m))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
    assert GatewayConfig().iec61850 is None
