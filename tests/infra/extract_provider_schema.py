"""Extract the google provider's schema for the resource types terraform/ uses, for offline tests.

The provider plugin cannot be downloaded here, but its generated schema ships on npm inside the
cdktf bindings (@cdktf/provider-google, @cdktf/provider-google-beta): the package's ``.jsii`` file
describes every resource's configuration as typed structs, one property per argument or block,
with its optional flag and its documentation (whose registry link names the snake_case field).
This script reads those packages and writes tests/infra/data/google_provider_schema.json, just
the resource and data source types terraform/ uses. Run it again after adding a resource type or
moving the provider bound in versions.tf:

    npm pack @cdktf/provider-google@16.12.1 @cdktf/provider-google-beta@16.12.1
    .venv/bin/python tests/infra/extract_provider_schema.py cdktf-provider-google-*.tgz

What the bindings keep: argument and block names, which are required, which blocks hold at most
one item, and the attributes a resource exposes for references. What they lose: the schema's
``deprecated`` flag, so a field counts as deprecated when its description says so ("Deprecated",
"**DEPRECATED**", "is deprecated"); enum values and conflicts are not checked.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tarfile
from pathlib import Path
from typing import Any

import hcl2

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
OUT = Path(__file__).resolve().parent / "data" / "google_provider_schema.json"

_REPRESENTS = re.compile(
    r"Represents a \{@link \S+/docs/(resources|data-sources)/\w+ ((?:google)_\w+)\}"
)
_ANCHOR = re.compile(r"#(\w+) [\w.]+#\w+\}")
_DEPRECATED = re.compile(r"^\s*(\*\*)?deprecated\b|\bis deprecated\b|\bare deprecated\b", re.I)


def _snake(camel: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", camel).lower()


def load_package(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(package.json, .jsii) of an npm package given as .tgz or as an unpacked directory."""
    if path.is_dir():
        return (
            json.loads((path / "package.json").read_text()),
            json.loads((path / ".jsii").read_text()),
        )
    with tarfile.open(path) as tar:
        read = {m.name: m for m in tar.getmembers()}
        package = json.load(tar.extractfile(read["package/package.json"]))
        return package, json.load(tar.extractfile(read["package/.jsii"]))


class Extractor:
    """Walks one provider's jsii types into plain schema dictionaries."""

    def __init__(self, jsii: dict[str, Any]) -> None:
        self.types: dict[str, Any] = jsii["types"]
        self.classes: dict[tuple[str, str], str] = {}
        for fqn, spec in self.types.items():
            match = _REPRESENTS.search(spec.get("docs", {}).get("summary", ""))
            if spec.get("kind") == "class" and match:
                kind = "resources" if match.group(1) == "resources" else "data"
                self.classes[(kind, match.group(2))] = fqn

    def _block_type(self, prop_type: dict[str, Any]) -> tuple[str, bool] | None:
        """(struct fqn, at most one) when the property is a block, else None."""
        candidates = prop_type.get("union", {}).get("types", [prop_type])
        for candidate in candidates:
            fqn = candidate.get("fqn")
            if fqn and self.types.get(fqn, {}).get("datatype"):
                return fqn, True
            element = candidate.get("collection", {}).get("elementtype", {}).get("fqn")
            if element and self.types.get(element, {}).get("datatype"):
                return element, False
        return None

    def struct(self, fqn: str) -> dict[str, Any]:
        """Arguments and blocks of one configuration struct."""
        attributes: dict[str, Any] = {}
        blocks: dict[str, Any] = {}
        for prop in self.types[fqn].get("properties", []):
            docs = prop.get("docs", {})
            anchor = _ANCHOR.search(docs.get("remarks", "") + " " + docs.get("summary", ""))
            name = anchor.group(1) if anchor else _snake(prop["name"])
            entry: dict[str, Any] = {"required": not prop.get("optional", False)}
            if _DEPRECATED.search(docs.get("summary", "")):
                entry["deprecated"] = True
            block = self._block_type(prop["type"])
            if block is None:
                attributes[name] = entry
            else:
                entry["max_one"] = block[1]
                entry.update(self.struct(block[0]))
                blocks[name] = entry
        return {"attributes": attributes, "blocks": blocks}

    def readable(self, class_fqn: str) -> list[str]:
        """Every attribute a reference may read (arguments and computed attributes)."""
        names = set()
        for prop in self.types[class_fqn].get("properties", []):
            if prop.get("static") or prop["name"].endswith("Input") or prop["name"] == "fqn":
                continue
            names.add(_snake(prop["name"]))
        return sorted(names)

    def resource(self, kind: str, tf_type: str) -> dict[str, Any]:
        """Schema of one resource or data source type."""
        class_fqn = self.classes[(kind, tf_type)]
        schema = self.struct(class_fqn + "Config")
        schema["readable"] = self.readable(class_fqn)
        return schema


def used_types() -> dict[str, dict[str, set[str]]]:
    """Per provider local name, the resource and data source types terraform/ uses with it."""
    used: dict[str, dict[str, set[str]]] = {}
    for path in TERRAFORM.rglob("*.tf"):
        for kind, items in hcl2.loads(path.read_text()).items():
            if kind not in ("resource", "data"):
                continue
            for item in items:
                for tf_type, by_name in item.items():
                    for body in by_name.values():
                        provider = str(body.get("provider", "google")).strip("${}")
                        key = "resources" if kind == "resource" else "data"
                        used.setdefault(provider, {"resources": set(), "data": set()})
                        used[provider][key].add(tf_type.strip('"'))
    return used


def extract(packages: list[Path]) -> dict[str, Any]:
    """The schema document: per provider, its version and the schemas of the types it serves."""
    used = used_types()
    out: dict[str, Any] = {"generated_by": "tests/infra/extract_provider_schema.py"}
    for path in packages:
        package, jsii = load_package(path)
        provider = package["cdktf"]["provider"]
        local_name = provider["name"].rsplit("/", 1)[1]
        extractor = Extractor(jsii)
        entry: dict[str, Any] = {
            "package": f"{package['name']}@{package['version']}",
            "version": provider["version"],
            "resources": {},
            "data": {},
        }
        for kind, types in used.get(local_name, {}).items():
            for tf_type in sorted(types):
                entry[kind][tf_type] = extractor.resource(kind, tf_type)
        out[local_name] = entry
    return out


def main(argv: list[str] | None = None) -> int:
    """Write the extract for the packages given on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("packages", nargs="+", type=Path, help="npm .tgz files or directories")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    document = extract(args.packages)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    counts = {
        name: len(entry["resources"]) + len(entry["data"])
        for name, entry in document.items()
        if name != "generated_by"
    }
    print(f"wrote {args.out}: {counts}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
