"""``lean-ops deploy``: build and upload the artifacts, then create or update only what changed."""

from lean_ops_spark.deploy.artifacts import build_wheel, lambda_package
from lean_ops_spark.deploy.plan import (
    AwsClients,
    DeployError,
    DeploymentInputs,
    DeployPlan,
    PlannedChange,
    apply_plan,
    plan_deployment,
)

__all__ = [
    "AwsClients",
    "DeployError",
    "DeployPlan",
    "DeploymentInputs",
    "PlannedChange",
    "apply_plan",
    "build_wheel",
    "lambda_package",
    "plan_deployment",
]
