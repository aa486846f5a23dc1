"""Fixtures that load terraform/, worker/names.json and cloudbuild/*.yaml once per session."""

from __future__ import annotations

import json
from typing import Any

import hcl2
import pytest
import yaml

from .tfload import CLOUDBUILD, MODULE, NAMES_JSON, TERRAFORM, TerraformDir, clean


@pytest.fixture(scope="session")
def root() -> TerraformDir:
    """The shared root (terraform/)."""
    return TerraformDir.load(TERRAFORM)


@pytest.fixture(scope="session")
def module() -> TerraformDir:
    """The per-deployment module (terraform/modules/deployment/)."""
    return TerraformDir.load(MODULE)


@pytest.fixture(scope="session")
def names() -> dict[str, Any]:
    """worker/names.json, the names code and terraform share."""
    return json.loads(NAMES_JSON.read_text())


@pytest.fixture(scope="session")
def example_tfvars() -> dict[str, Any]:
    """terraform/terraform.tfvars.example, parsed."""
    return clean(hcl2.loads((TERRAFORM / "terraform.tfvars.example").read_text()))


@pytest.fixture(scope="session")
def gateway_image() -> dict[str, Any]:
    """cloudbuild/gateway-image.yaml, parsed."""
    return yaml.safe_load((CLOUDBUILD / "gateway-image.yaml").read_text())


@pytest.fixture(scope="session")
def worker_image() -> dict[str, Any]:
    """cloudbuild/worker-image.yaml (the build pipeline), parsed."""
    return yaml.safe_load((CLOUDBUILD / "worker-image.yaml").read_text())


@pytest.fixture(scope="session")
def worker_deploy() -> dict[str, Any]:
    """cloudbuild/worker-deploy.yaml (the approved deploy stage), parsed."""
    return yaml.safe_load((CLOUDBUILD / "worker-deploy.yaml").read_text())
