"""Turn the operators' CustomResourceDefinitions (copied verbatim from their repositories, see SOURCES.md) into
the compact JSON schemas the manifest test validates against: one file per kind and version, descriptions
dropped. Run from this folder after replacing the *.crd.yaml files: `python extract.py`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def main() -> None:
    out = HERE / "schemas"
    out.mkdir(exist_ok=True)
    for crd_file in sorted(HERE.glob("*.crd.yaml")):
        for crd in yaml.safe_load_all(crd_file.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served"):
                    continue
                schema = _strip(version["schema"]["openAPIV3Schema"])
                name = f"{group}_{kind}_{version['name']}.json".lower()
                (out / name).write_text(json.dumps(schema, separators=(",", ":"), sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
