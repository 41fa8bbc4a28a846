"""App secrets in Secrets Manager under a customer-managed KMS key, handed to the app by ARN."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field, model_validator

from .._base import ChildFactory, ComponentArgs, Transform, physical_name, resolve_args
from .iam import Grant


class SecretsArgs(ComponentArgs):
    """Secrets Manager secrets for the app, encrypted with one KMS key that rotates yearly.

    Cost: $1/month for the KMS key, $0.40/month per secret, $0.05 per 10,000 API calls.

    ```python
    Secrets("app", {"values": {"AGENT_LLM_API_KEY": pulumi.Config().require_secret("llmApiKey")}})
    ```
    """

    values: dict[str, str | pulumi.Output[str]] = {}
    """Env var name -> secret value to copy into Secrets Manager, normally
    `pulumi.Config().require_secret(key)` from `pulumi config set --secret`. The value is stored
    as a Pulumi secret (encrypted in state) and never reaches the app as a plain env value."""
    existing_arns: dict[str, str] = {}
    """Env var name -> an existing Secrets Manager ARN to reference as is (nothing is created)."""
    rotation_lambda_arns: dict[str, str | pulumi.Output[str]] = {}
    """Rotation-function hook: env var name -> ARN of a rotation Lambda. AWS cannot rotate a
    third-party API key, so by default nothing rotates it and the age alarm watches it instead."""
    rotation_days: int = Field(30, ge=1, le=365)
    """Days between rotations for secrets with a rotation function."""
    max_age_days: int = Field(90, ge=1, le=365)
    """Age alarm: a secret not rotated within this many days turns the AWS Config rule
    `secretsmanager-secret-periodic-rotation` non-compliant, which notifies `alarm_topic_arn`."""
    age_alarm: bool = True
    """Create the AWS Config rule and its notification. Needs an AWS Config recorder in the
    account and region (most landing zones have one). Cost: $0.001 per rule evaluation."""
    alarm_topic_arn: str | pulumi.Output[str] | None = None
    """SNS topic for the age alarm. None: the Config rule still records compliance, unnotified."""
    recovery_window_days: int = Field(7, ge=0, le=30)
    """Days a deleted secret can be restored. 0 deletes immediately (dev stacks only)."""
    kms_key_arn: str | pulumi.Output[str] | None = None
    """Use this KMS key instead of creating one."""
    tags: dict[str, str] = {}
    """Tags on every taggable child."""
    transforms: Mapping[Literal["age_event", "age_rule", "age_target", "alias", "key", "rotation", "secret", "version"], Transform] = {}
    """Escape hatch per child role (`age_event`, `age_rule`, `age_target`, `alias`, `key`, `rotation`, `secret`, `version`): a dict deep-merged into that child's args, or
    fn(args, opts) that edits them. Any other role is refused, naming these."""

    @model_validator(mode="after")
    def _disjoint(self) -> SecretsArgs:
        both = sorted(set(self.values) & set(self.existing_arns))
        if both:
            raise ValueError(f"{', '.join(both)}: set either values or existing_arns, not both")
        unknown = sorted(set(self.rotation_lambda_arns) - set(self.values))
        if unknown:
            raise ValueError(f"rotation_lambda_arns: {', '.join(unknown)} not in values")
        return self


def _slug(env_name: str) -> str:
    """`AGENT_LLM_API_KEY` -> `llm-api-key` (child and physical names)."""
    return env_name.lower().removeprefix("agent_").replace("_", "-")


class Secrets(pulumi.ComponentResource):
    """A KMS key and one Secrets Manager secret per app secret; `arns` is what ECS `secrets` use."""

    arns: dict[str, pulumi.Output[str]]
    """Env var name -> secret ARN (ECS `secrets[].valueFrom`, or `<NAME>_SECRET_ARN` for Lambda)."""
    kms_key_arn: pulumi.Output[str] | None
    """The key the created secrets are encrypted with (readers need `kms:Decrypt` on it); None when
    nothing is created here and no key was passed."""

    def __init__(self, name: str, args: SecretsArgs | Mapping[str, Any] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        args = resolve_args(SecretsArgs, args, name)
        super().__init__("agent-infra:aws:Secrets", name, None, opts)
        child = ChildFactory(self, args.transforms, args.tags)
        self.key: aws.kms.Key | None = None
        self.kms_key_arn: pulumi.Output[str] | None = None
        if args.kms_key_arn is not None:
            self.kms_key_arn = pulumi.Output.from_input(args.kms_key_arn)
        elif args.values:
            # A key costs $1/month: only when it encrypts a secret created here (existing ARNs
            # bring their own key). Its policy is explicit: the account administers it through IAM.
            account = aws.get_caller_identity_output().account_id
            region = aws.get_region_output().region
            self.key = child("key", aws.kms.Key, name, description=f"agent-infra secrets ({name})",
                             enable_key_rotation=True, rotation_period_in_days=365, deletion_window_in_days=30,
                             policy=pulumi.Output.all(account, region).apply(lambda a: key_policy(a[0], a[1])))
            child("alias", aws.kms.Alias, f"{name}-alias",
                  name=f"alias/{physical_name(name, 200)}", target_key_id=self.key.key_id)
            self.kms_key_arn = self.key.arn

        self.secrets: dict[str, aws.secretsmanager.Secret] = {}
        self.arns = {env: pulumi.Output.from_input(arn) for env, arn in args.existing_arns.items()}
        for env, value in sorted(args.values.items()):
            slug = _slug(env)
            secret = child("secret", aws.secretsmanager.Secret, f"{name}-{slug}",
                           name=physical_name(slug, 256, "/"),
                           description=f"{env} for the agent app",
                           kms_key_id=self.kms_key_arn,
                           recovery_window_in_days=args.recovery_window_days)
            child("version", aws.secretsmanager.SecretVersion, f"{name}-{slug}-version",
                  secret_id=secret.id, secret_string=pulumi.Output.secret(value))
            rotation_arn = args.rotation_lambda_arns.get(env)
            if rotation_arn is not None:
                child("rotation", aws.secretsmanager.SecretRotation, f"{name}-{slug}-rotation",
                      secret_id=secret.id, rotation_lambda_arn=rotation_arn,
                      rotation_rules={"automatically_after_days": args.rotation_days})
            self.secrets[env] = secret
            self.arns[env] = secret.arn

        self._name, self._args, self._child = name, args, child
        self.age_rule: aws.cfg.Rule | None = None
        if args.age_alarm and self.secrets:
            self._age_alarm(name, args, child)
            if args.alarm_topic_arn is not None:
                self.notify_age(args.alarm_topic_arn)
        self.register_outputs({"arns": self.arns, **({"kms_key_arn": self.kms_key_arn} if self.kms_key_arn else {})})

    def _age_alarm(self, name: str, args: SecretsArgs, child: ChildFactory) -> None:
        rule_name = physical_name(f"{name}-secret-age", 128)
        self.age_rule = child(
            "age_rule", aws.cfg.Rule, f"{name}-age",
            name=rule_name,
            description=f"Secrets of {name} rotated within {args.max_age_days} days",
            source={"owner": "AWS", "source_identifier": "SECRETSMANAGER_SECRET_PERIODIC_ROTATION"},
            input_parameters=json.dumps({"maxDaysSinceRotation": str(args.max_age_days)}),
            scope={"compliance_resource_types": ["AWS::SecretsManager::Secret"]})

    def notify_age(self, topic_arn: str | pulumi.Output[str]) -> None:
        """Send the age rule's NON_COMPLIANT changes to `topic_arn` (when the topic is created after
        the secrets, as in the topologies). No-op without an age rule."""
        if self.age_rule is None:
            return
        name, args, child = self._name, self._args, self._child
        rule_name = self.age_rule.name
        event = child(
            "age_event", aws.cloudwatch.EventRule, f"{name}-age-event",
            description=f"Secret of {name} older than {args.max_age_days} days",
            event_pattern=rule_name.apply(lambda rule_name: json.dumps({
                "source": ["aws.config"], "detail-type": ["Config Rules Compliance Change"],
                "detail": {"configRuleName": [rule_name],
                           "newEvaluationResult": {"complianceType": ["NON_COMPLIANT"]}}})))
        child("age_target", aws.cloudwatch.EventTarget, f"{name}-age-target", rule=event.name, arn=topic_arn)

    def grant_read(self) -> list[Grant]:
        """What a reader (ECS execution role, Lambda role) needs: these secrets and the key only."""
        if not self.arns:
            return []
        grants = [Grant(("secretsmanager:GetSecretValue",), tuple(self.arns[k] for k in sorted(self.arns)),
                        "ReadAppSecrets")]
        if self.kms_key_arn is not None:
            grants.append(Grant(("kms:Decrypt",), (self.kms_key_arn,), "DecryptAppSecrets"))
        return grants


def key_policy(account: str, region: str) -> str:
    """The stack key's policy: the account administers and uses it through IAM policies (the
    roles' `kms:Decrypt` grants); CloudWatch Logs may use it for this account's log groups in
    this region only (the encryption context names the log group)."""
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "AccountAdmin", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
         "Action": "kms:*", "Resource": "*"},
        # The encryption context is a string: StringLike (AWS's examples use ArnLike; same match).
        {"Sid": "CloudWatchLogs", "Effect": "Allow", "Principal": {"Service": f"logs.{region}.amazonaws.com"},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
         "Resource": "*", "Condition": {"StringLike": {
             "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{region}:{account}:log-group:*"}}},
        {"Sid": "CloudWatchLogsDescribe", "Effect": "Allow", "Principal": {"Service": f"logs.{region}.amazonaws.com"},
         "Action": "kms:DescribeKey", "Resource": "*", "Condition": {"StringEquals": {"aws:SourceAccount": account}}}]})
