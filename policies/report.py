"""Output formats of `agent-infra policy`: text (grouped by resource), json, sarif (2.1.0), junit."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree as ET

from .engine import Rule, Violation

TOOL_NAME = "agent-infra-policy"
INFO_URI = "https://github.com/agent-infra/agent-infra/blob/main/docs/policies.md"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


@dataclass
class Report:
    """The outcome of one offline policy run."""

    project: str
    stack: str
    rules: Sequence[Rule]
    levels: dict[str, str]
    """Policy id -> effective enforcement level (after the config file)."""
    violations: list[Violation]
    resource_count: int
    location: str | None = None
    """File the SARIF results point at (the stack's config file), relative to the repository."""
    version: str = "0.1.0"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.mandatory]

    @property
    def advisory(self) -> list[Violation]:
        return [v for v in self.violations if not v.mandatory]

    @property
    def exit_code(self) -> int:
        return 1 if self.mandatory else 0

    def grouped(self) -> list[tuple[str, list[Violation]]]:
        """(resource label, violations), the stack itself first, then resources in name order."""
        groups: dict[str, list[Violation]] = {}
        for violation in self.violations:
            label = (f"{violation.resource_name} ({violation.resource_type})" if violation.resource_name
                     else violation.urn or f"stack {self.project}/{self.stack}")
            groups.setdefault(label, []).append(violation)
        stack_label = f"stack {self.project}/{self.stack}"
        return sorted(groups.items(), key=lambda item: (item[0] != stack_label, item[0]))


def render(report: Report, fmt: str) -> str:
    return {"text": to_text, "json": to_json, "sarif": to_sarif, "junit": to_junit}[fmt](report)


def to_text(report: Report) -> str:
    lines: list[str] = []
    for label, violations in report.grouped():
        lines.append(label)
        for v in sorted(violations, key=lambda v: (not v.mandatory, v.policy)):
            lines.append(f"  [{v.level}] {v.policy}: {v.message}")
            lines.append(f"      fix: {v.remediation}")
        lines.append("")
    enabled = sum(1 for level in report.levels.values() if level != "disabled")
    summary = (f"{report.project}/{report.stack}: {enabled} policies over {report.resource_count} resources: "
               f"{len(report.mandatory)} mandatory, {len(report.advisory)} advisory violation(s)")
    lines.append(summary + (" - FAILED" if report.mandatory else " - passed"))
    return "\n".join(lines) + "\n"


def to_json(report: Report) -> str:
    document = {
        "project": report.project, "stack": report.stack, "passed": not report.mandatory,
        "summary": {"resources": report.resource_count, "mandatory": len(report.mandatory),
                    "advisory": len(report.advisory)},
        "policies": [{"name": r.name, "level": report.levels[r.name], "area": r.area, "kind": r.kind,
                      "description": r.description, "remediation": r.remediation} for r in report.rules],
        "violations": [v.to_dict() for v in report.violations],
    }
    return json.dumps(document, indent=2) + "\n"


def _sarif_level(level: str) -> str:
    return {"mandatory": "error", "advisory": "warning", "remediate": "error"}.get(level, "none")


def to_sarif(report: Report) -> str:
    rules = list(report.rules)
    index = {rule.name: i for i, rule in enumerate(rules)}
    location = report.location or "Pulumi.yaml"
    results = []
    for v in report.violations:
        logical = {"name": v.resource_name or report.stack, "kind": "resource" if v.resource_name else "module"}
        if v.urn:
            logical["fullyQualifiedName"] = v.urn
        where = f"{v.resource_name} ({v.resource_type})" if v.resource_name else f"stack {report.stack}"
        results.append({
            "ruleId": v.policy,
            "ruleIndex": index[v.policy],
            "level": _sarif_level(v.level),
            "message": {"text": f"{where}: {v.message}. Fix: {v.remediation}"},
            "locations": [{
                "physicalLocation": {"artifactLocation": {"uri": location}, "region": {"startLine": 1}},
                "logicalLocations": [logical],
            }],
            "partialFingerprints": {"agentInfraPolicy/v1": f"{v.policy}:{v.urn or report.stack}:{v.message}"},
            "properties": {"enforcementLevel": v.level, "stack": report.stack},
        })
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": TOOL_NAME,
                "version": report.version,
                "informationUri": INFO_URI,
                "rules": [{
                    "id": rule.name,
                    "name": "".join(part.title() for part in rule.name.split("-")),
                    "shortDescription": {"text": rule.description},
                    "fullDescription": {"text": rule.description},
                    "help": {"text": rule.remediation, "markdown": f"**Fix:** {rule.remediation}"},
                    "helpUri": f"{INFO_URI}#{rule.name}",
                    "defaultConfiguration": {"level": _sarif_level(report.levels[rule.name])},
                    "properties": {"tags": [rule.area, "security" if rule.severity in ("high", "critical")
                                            else "reliability"],
                                   "enforcementLevel": report.levels[rule.name]},
                } for rule in rules],
            }},
            "automationDetails": {"id": f"agent-infra-policy/{report.project}/{report.stack}/"},
            "results": results,
        }],
    }
    return json.dumps(document, indent=2) + "\n"


def to_junit(report: Report) -> str:
    """One test case per policy: mandatory violations fail it, advisory ones go to system-out,
    disabled policies are skipped."""
    suite = ET.Element("testsuite", name=f"agent-infra-policy.{report.project}.{report.stack}",
                       tests=str(len(report.rules)))
    failures = skipped = 0
    for rule in report.rules:
        case = ET.SubElement(suite, "testcase", classname=f"policies.{rule.area}", name=rule.name)
        found = [v for v in report.violations if v.policy == rule.name]
        level = report.levels[rule.name]
        text = "\n".join(f"{v.resource_name or 'stack'} ({v.resource_type or report.stack}): {v.message}\n"
                         f"  fix: {v.remediation}" for v in found)
        if level == "disabled":
            ET.SubElement(case, "skipped", message="disabled in the policy config")
            skipped += 1
        elif any(v.mandatory for v in found):
            failure = ET.SubElement(case, "failure", message=f"{len(found)} violation(s) of {rule.name}",
                                    type="mandatory")
            failure.text = text
            failures += 1
        elif found:
            ET.SubElement(case, "system-out").text = text
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    suite.set("errors", "0")
    root = ET.Element("testsuites", name="agent-infra-policy", tests=str(len(report.rules)),
                      failures=str(failures))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
