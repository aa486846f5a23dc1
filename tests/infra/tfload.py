"""Loaders for terraform/ (via python-hcl2) used by the infra tests."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

REPO = Path(__file__).resolve().parents[2]
TERRAFORM = REPO / "terraform"
MODULE = TERRAFORM / "modules" / "deployment"
CLOUDBUILD = REPO / "cloudbuild"
NAMES_JSON = REPO / "worker" / "names.json"

# Keys python-hcl2 adds that are not part of the configuration.
_MARKERS = frozenset({"__is_block__", "__comments__", "__inline_comments__"})
_EXPR = re.compile(r"^\$\{(.+)\}$", re.DOTALL)
_MODE_REPLACE = re.compile(r'^replace\((.+), "\{mode\}", each\.key\)$')


def clean(value: Any) -> Any:
    """Normalise python-hcl2 output: unquote literals and labels, drop block markers.

    python-hcl2 8 keeps string literals quoted ('"x"') and expressions as '${...}'. After this,
    a literal is its plain text and an expression stays '${...}', so tests can tell them apart.
    """
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            return value[1:-1]
        return value
    if isinstance(value, list):
        return [clean(item) for item in value]
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items() if k not in _MARKERS}
    return value


@dataclass
class TerraformDir:
    """The merged top-level blocks of every .tf file in one directory."""

    path: Path
    blocks: dict[str, list[Any]] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> TerraformDir:
        """Parse every *.tf file of `path` (not recursive)."""
        tf = cls(path)
        for file in sorted(path.glob("*.tf")):
            text = file.read_text()
            tf.texts[file.name] = text
            for kind, items in clean(hcl2.loads(text)).items():
                tf.blocks.setdefault(kind, []).extend(items)
        return tf

    def _labelled(self, kind: str) -> dict[str, Any]:
        # Resources and data sources have two labels: merge per type, not per item.
        merged: dict[str, Any] = {}
        for item in self.blocks.get(kind, []):
            for label, body in item.items():
                if kind in ("resource", "data"):
                    merged.setdefault(label, {}).update(body)
                else:
                    merged[label] = body
        return merged

    def resources(self, rtype: str) -> dict[str, dict[str, Any]]:
        """Resources of one type, keyed by resource name."""
        return self._labelled("resource").get(rtype, {})

    def resource(self, rtype: str, name: str) -> dict[str, Any]:
        """One resource body; fails the test when it is missing."""
        found = self.resources(rtype)
        assert name in found, f"{rtype}.{name} missing from {self.path}"
        return found[name]

    def all_resources(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Every resource as (type, name, body)."""
        return [
            (rtype, name, body)
            for rtype, by_name in self._labelled("resource").items()
            for name, body in by_name.items()
        ]

    @property
    def variables(self) -> dict[str, dict[str, Any]]:
        """Variable blocks keyed by name."""
        return self._labelled("variable")

    @property
    def locals(self) -> dict[str, Any]:
        """All locals of the directory merged."""
        merged: dict[str, Any] = {}
        for item in self.blocks.get("locals", []):
            merged.update(item)
        return merged

    @property
    def modules(self) -> dict[str, dict[str, Any]]:
        """Module calls keyed by name."""
        return self._labelled("module")

    @property
    def outputs(self) -> dict[str, dict[str, Any]]:
        """Output blocks keyed by name."""
        return self._labelled("output")

    @property
    def text(self) -> str:
        """All .tf sources concatenated, for textual checks."""
        return "\n".join(self.texts.values())


def block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The single nested block `name` of a resource body."""
    blocks = body.get(name)
    assert isinstance(blocks, list), f"no {name} block"
    assert len(blocks) == 1, f"expected one {name} block, got {blocks!r}"
    return blocks[0]


@dataclass
class NameResolver:
    """Evaluates the few expression shapes terraform uses to derive names from names.json.

    Supported: literals, local.X, local.names.a.b, var.names.K (module input, taken from the root's
    module call) and replace(<one of those>, "{mode}", each.key) for one trading mode.
    """

    root: TerraformDir
    names: dict[str, Any]
    mode: str

    def __call__(self, expr: str) -> Any:
        """Resolve one expression string to its value."""
        match = _EXPR.match(expr)
        if not match:
            return expr
        return self._inner(match.group(1).strip())

    def _inner(self, inner: str) -> Any:
        replaced = _MODE_REPLACE.match(inner)
        if replaced:
            return self._inner(replaced.group(1)).replace("{mode}", self.mode)
        if inner.startswith("var.names."):
            call = self.root.modules["deployment"]["names"]
            return self(call[inner.removeprefix("var.names.")])
        if inner.startswith("local.names."):
            value: Any = self.names
            for part in inner.removeprefix("local.names.").split("."):
                value = value[part]
            return value
        if inner.startswith("local."):
            return self(self.root.locals[inner.removeprefix("local.")])
        raise ValueError(f"cannot resolve {inner!r}")
