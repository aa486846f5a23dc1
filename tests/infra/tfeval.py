"""Evaluate terraform expressions offline with `terraform console` (no provider needed).

The module's own expressions (as python-hcl2 reads them) are written into a scratch root with
the variables they use, so a test checks what terraform will compute, not a copy of the logic.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.tools import require_tool


def terraform(why: str = "evaluates the module's expressions") -> str:
    """The terraform binary; fails under CI=true when it is missing, else skips."""
    return require_tool("terraform", why, "/usr/local/bin/terraform")


def evaluate(
    workdir: Path, locals_: dict[str, str], variables: dict[str, Any], expression: str
) -> Any:
    """The JSON value of `expression` given python-hcl2 locals ('${...}') and variable values."""
    workdir.mkdir(parents=True, exist_ok=True)
    lines = [f'variable "{name}" {{}}' for name in variables]
    lines.append("locals {")
    for name, expr in locals_.items():
        body = expr[2:-1] if expr.startswith("${") and expr.endswith("}") else json.dumps(expr)
        lines.append(f"  {name} = {body}")
    lines.append("}")
    (workdir / "main.tf").write_text("\n".join(lines) + "\n")
    (workdir / "terraform.tfvars.json").write_text(json.dumps(variables))
    result = subprocess.run(
        [terraform(), "console"],
        input=f"jsonencode({expression})\n",
        cwd=workdir,
        env={**os.environ, "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": os.devnull},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(json.loads(result.stdout.strip()))
