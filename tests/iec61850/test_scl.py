"""The SCL the CLI writes describes exactly the served model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lxml import etree

from protocols.iec61850.datamodel import NODES
from protocols.iec61850.scl import NS

Q = {"s": NS}


def test_cli_writes_an_icd_naming_every_logical_node_and_data_object(tmp_path: Path) -> None:
    out = tmp_path / "dergw.icd"
    subprocess.run(
        [sys.executable, "-m", "gateway.cli", "iec61850", "scl", str(out), "--ied-name", "FLEET1", "--ip", "10.1.2.3"],
        check=True,
        capture_output=True,
    )
    doc = etree.parse(str(out))
    assert doc.find("s:IED", Q).get("name") == "FLEET1"
    assert doc.find(".//s:ConnectedAP/s:Address/s:P", Q).text == "10.1.2.3"
    served = {(ln.get("lnClass"), ln.get("inst")) for ln in doc.iterfind(".//s:LDevice/*", Q)}
    assert served == {(ln.ln_class, ln.inst) for ln in NODES}
    for ln in NODES:
        node_type = doc.find(f".//s:LNodeType[@id='{ln.ln_class}_T']", Q)
        assert [d.get("name") for d in node_type.iterfind("s:DO", Q)] == [d.name for d in ln.data]
        for do, el in zip(ln.data, node_type.iterfind("s:DO", Q), strict=True):
            assert doc.find(f".//s:DOType[@id='{el.get('type')}']", Q).get("cdc") == do.cdc
    ids = {el.get("id") for el in doc.iterfind(".//s:DataTypeTemplates/*", Q)}
    for ref in doc.iterfind(".//s:DataTypeTemplates//*[@type]", Q):
        assert ref.get("type") in ids, ref.get("type")
    ctl_model = doc.find(".//s:EnumType[@id='CtlModelKind']/s:EnumVal[@ord='4']", Q)
    assert ctl_model.text == "sbo-with-enhanced-security"
