"""Least privilege and no public access anywhere in terraform/."""

from __future__ import annotations

import re

import hcl2
import pytest

from .tfload import TERRAFORM, TerraformDir, block, clean

IAM_MEMBER = re.compile(r"^google_\w+_iam_member$")


def _all_terraform_text() -> str:
    files = [*TERRAFORM.rglob("*.tf"), *TERRAFORM.rglob("*.tfvars*")]
    return "\n".join(path.read_text() for path in files)


def _iam_members(*dirs: TerraformDir) -> list[tuple[str, str, dict]]:
    return [(t, n, b) for tf in dirs for t, n, b in tf.all_resources() if IAM_MEMBER.match(t)]


@pytest.mark.parametrize("principal", ["allUsers", "allAuthenticatedUsers"])
def test_no_public_principal_anywhere(principal: str) -> None:
    assert principal.lower() not in _all_terraform_text().lower()


def test_iam_is_additive_only(root: TerraformDir, module: TerraformDir) -> None:
    # *_iam_binding and *_iam_policy replace whatever else holds the role: never use them here.
    for tf in (root, module):
        for rtype, name, _ in tf.all_resources():
            assert not re.match(r"^google_\w+_iam_(binding|policy)$", rtype), f"{rtype}.{name}"


def test_every_grant_names_a_service_account(root: TerraformDir, module: TerraformDir) -> None:
    for rtype, name, body in _iam_members(root, module):
        member = body["member"]
        assert member.startswith("serviceAccount:") or member in {
            "${var.pubsub_service_agent}",
            "${local.builder_member}",
        }, f"{rtype}.{name}: {member}"
        assert not re.search(r"roles/(owner|editor|viewer)$", body["role"]), f"{rtype}.{name}"


def test_secret_accessor_only_for_the_runtime_account(
    root: TerraformDir, module: TerraformDir
) -> None:
    grants = [
        (rtype, body)
        for rtype, _, body in _iam_members(root, module)
        if body["role"] == "roles/secretmanager.secretAccessor"
    ]
    assert len(grants) == 1
    rtype, grant = grants[0]
    assert rtype == "google_secret_manager_secret_iam_member"
    assert grant["secret_id"] == "${google_secret_manager_secret.ib_credentials.secret_id}"
    assert grant["member"] == "serviceAccount:${local.runtime_email}"


def test_only_the_push_identity_invokes_the_service(
    root: TerraformDir, module: TerraformDir
) -> None:
    invokers = [
        (name, body)
        for _, name, body in _iam_members(root, module)
        if body["role"] == "roles/run.invoker"
    ]
    assert [name for name, _ in invokers] == ["push_invokes_service"]
    assert invokers[0][1]["member"] == "serviceAccount:${google_service_account.push_invoker.email}"
    service = module.resource("google_cloud_run_v2_service", "main")
    assert service["invoker_iam_disabled"] is False
    assert module.variables["ingress"]["validation"]


def test_project_level_grants_are_few_and_narrow(root: TerraformDir, module: TerraformDir) -> None:
    grants = {
        (name, body["role"])
        for tf in (root, module)
        for name, body in tf.resources("google_project_iam_member").items()
    }
    assert grants == {
        ("runtime_uses_firestore", "roles/datastore.user"),
        ("runtime_runs_queries", "roles/bigquery.jobUser"),
        ("builder_writes_logs", "roles/logging.logWriter"),
    }
    firestore = module.resource("google_project_iam_member", "runtime_uses_firestore")
    assert "var.firestore_database" in block(firestore, "condition")["expression"]


def test_runtime_account_is_per_deployment_or_reused(module: TerraformDir) -> None:
    assert module.locals["runtime_account_id"] == (
        '${coalesce(var.runtime_account_id, "ib-${var.trading_mode}-runtime")}'
    )
    created = module.resource("google_service_account", "runtime")
    assert created["count"] == "${var.create_runtime_account ? 1 : 0}"
    reused = module._labelled("data")["google_service_account"]["runtime"]
    assert reused["count"] == "${var.create_runtime_account ? 0 : 1}"
    assert "ib-trading" in module.variables["runtime_account_id"]["description"]
    template = block(module.resource("google_cloud_run_v2_service", "main"), "template")
    assert template["service_account"] == "${local.runtime_email}"


def test_live_deploys_need_approval_right_before_the_deploy(root: TerraformDir) -> None:
    deploy = root.resource("google_cloudbuild_trigger", "worker_deploy")
    assert block(deploy, "approval_config")["approval_required"] is True
    assert deploy["name"] == "ib-worker-deploy-${each.key}"
    # Every deployment that needs approval gets one; live always does.
    triggers = root.locals["deploy_triggers"]
    assert 'mode == "live" || d.deploy_requires_approval' in triggers
    assert deploy["for_each"] == "${local.deploy_triggers}"
    assert deploy["substitutions"]["_TRADING_MODE"] == "${each.key}"
    # Build once: live takes the digest paper runs.
    assert '"paper"' in deploy["substitutions"]["_SOURCE_TAG"]
    # The build trigger never deploys live and has no approval of its own (it would come
    # before the tests and builds, tens of minutes ahead of the deploy).
    build = root.resource("google_cloudbuild_trigger", "worker_build")
    assert "approval_config" not in build
    assert build["substitutions"]["_DEPLOY_MODE"] == '${local.paper_auto_deploy ? "paper" : ""}'


def test_skips_are_justified_inline() -> None:
    skips = re.findall(r"#checkov:skip=(\S+?):(.*)", _all_terraform_text())
    assert skips, "expected the CMEK skips"
    for check, reason in skips:
        assert re.fullmatch(r"CKV2?_GCP_\d+", check), check
        assert len(reason.split()) >= 5, f"{check}: reason too short"


@pytest.mark.parametrize("tf_dir", ["root", "module"])
def test_every_variable_is_described(tf_dir: str, request: pytest.FixtureRequest) -> None:
    tf: TerraformDir = request.getfixturevalue(tf_dir)
    for name, variable in tf.variables.items():
        assert len(variable.get("description", "")) > 10, name


@pytest.mark.parametrize(
    "name", ["trading_mode", "delivery", "ingress", "min_instances", "cpu", "concurrency"]
)
def test_enum_like_module_variables_are_validated(module: TerraformDir, name: str) -> None:
    assert module.variables[name].get("validation"), name


def test_every_output_is_described(root: TerraformDir, module: TerraformDir) -> None:
    for tf in (root, module):
        for name, output in tf.outputs.items():
            assert output.get("description"), name


def test_example_tfvars_is_the_first_deploy(root: TerraformDir, example_tfvars: dict) -> None:
    # As written it is the README's first deploy: paper only, no triggers. Live needs a secret
    # version first and triggers need a connected repository: both are later, explicit steps.
    assert set(example_tfvars) <= set(root.variables)
    deployments = example_tfvars["deployments"]
    assert set(deployments) == {"paper"}
    assert "cloudbuild" not in example_tfvars
    for deployment in deployments.values():
        for job in deployment.get("schedules", {}).values():
            assert job["dedupe_window"] >= 1
    assert root.variables["deployments"]["default"] == {"paper": {}}
    assert root.variables["cloudbuild"]["default"] == {}  # enabled defaults to false


def _uncomment_later_steps(text: str) -> str:
    """The example with its commented `live = {...}` and `cloudbuild = {...}` blocks enabled."""
    lines, closing = [], None
    for line in text.splitlines():
        opening = re.match(r"^(\s*)# ((live|cloudbuild) = \{)$", line)
        if opening:
            closing = f"{opening.group(1)}# }}"
        if closing is not None:
            done = line == closing
            line = re.sub(r"^(\s*)# ?", r"\1", line, count=1)
            closing = None if done else closing
        lines.append(line)
    return "\n".join(lines)


def test_example_later_steps_parse_once_uncommented(root: TerraformDir) -> None:
    text = (TERRAFORM / "terraform.tfvars.example").read_text()
    parsed = clean(hcl2.loads(_uncomment_later_steps(text)))
    assert set(parsed["deployments"]) == {"paper", "live"}
    assert parsed["deployments"]["live"]["min_instances"] == 1
    assert parsed["cloudbuild"]["enabled"] is True
    assert set(parsed["cloudbuild"]) <= set(
        re.findall(r"(\w+)\s*=\s*optional", root.variables["cloudbuild"]["type"])
    )


def test_plain_env_cannot_carry_credentials(module: TerraformDir) -> None:
    condition = module.variables["env"]["validation"][0]["condition"]
    assert "(IB|TWS)_(CREDENTIALS|USERNAME|USERID|PASSWORD)" in condition
