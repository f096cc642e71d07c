"""Writes the generated parts of charts/spark-secrets-renewer from their one source; ``--check`` fails when
a file differs from what it would write (tests/test_chart_unit.py runs it).

- ``templates/rbac.yaml`` and ``templates/admission.yaml``: ``spark-secrets rbac common`` (spark_secrets.kube.rbac),
  with the release's namespace for the renew service's;
- ``files/alerts.yaml``: conf/renewer/alerts.yaml;
- the values table in ``README.md``: from the ``# --`` comments of ``values.yaml``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "spark-secrets-renewer"
#: A namespace name that no cluster uses, replaced by the release's namespace in the templates.
PLACEHOLDER = "chart-release-namespace-placeholder"
HEADER = "# Made by charts/generate.py from {source}; edit that, not this file.\n"
#: Objects of ``rbac common`` the chart writes by hand, from values: the namespace (helm --create-namespace),
#: the owners' parameters, and the admission policies and bindings (in admission.yaml, behind admission.enabled).
ADMISSION_KINDS = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
TABLE_BEGIN, TABLE_END = "<!-- values table: begin -->", "<!-- values table: end -->"


def _dump(docs: list[dict[str, Any]]) -> str:
    text = yaml.safe_dump_all(docs, sort_keys=False, explicit_start=True, default_flow_style=None, width=120)
    assert "{{" not in text, "a generated object holds '{{', which helm would read as a template"
    return text.replace(PLACEHOLDER, "{{ .Release.Namespace }}")


def rbac_templates() -> dict[str, str]:
    from spark_secrets.kube import rbac

    manifests = rbac.common(renewer_namespace=PLACEHOLDER)
    kept = [m for m in manifests if m["kind"] not in ("Namespace", "ConfigMap", *ADMISSION_KINDS)]
    admission = [m for m in manifests if m["kind"] in ADMISSION_KINDS]
    source = HEADER.format(source="spark_secrets.kube.rbac.common()")
    return {"templates/rbac.yaml": source + _dump(kept),
            "templates/admission.yaml": source + "{{- if .Values.admission.enabled }}\n" + _dump(admission)
            + "{{- end }}\n"}


def _described(values_text: str) -> list[tuple[str, str]]:
    """(dotted key, description) for each key headed by a ``# --`` comment (continued by ``#`` lines)."""
    out: list[tuple[str, str]] = []
    stack: list[tuple[int, str]] = []
    pending: list[str] | None = None
    for line in values_text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending = [stripped[4:].strip()]
            continue
        if stripped.startswith("#") and pending is not None:
            pending.append(stripped[1:].strip())
            continue
        key = re.match(r"^(\s*)([A-Za-z0-9_]+):", line)
        if not key:
            pending = None
            continue
        indent = len(key.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key.group(2)))
        if pending is not None:
            out.append((".".join(k for _, k in stack), " ".join(pending)))
        pending = None
    return out


def _default(values: dict[str, Any], dotted: str) -> str:
    node: Any = values
    for part in dotted.split("."):
        node = node[part]
    return "`" + (yaml.safe_dump(node, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()
                  if not isinstance(node, str) else repr(node).replace("'", '"')) + "`"


def values_table(values_text: str) -> str:
    values = yaml.safe_load(values_text)
    rows = ["| key | default | description |", "|---|---|---|"]
    rows += [f"| `{key}` | {_default(values, key)} | {text.replace('|', '&#124;').replace('<', '&lt;')} |"
             for key, text in _described(values_text)]
    return "\n".join(rows) + "\n"


def readme(current: str, values_text: str) -> str:
    before, _, rest = current.partition(TABLE_BEGIN)
    _, _, after = rest.partition(TABLE_END)
    return f"{before}{TABLE_BEGIN}\n{values_table(values_text)}{TABLE_END}{after}"


def generated() -> dict[str, str]:
    files = rbac_templates()
    files["files/alerts.yaml"] = (ROOT / "conf" / "renewer" / "alerts.yaml").read_text()
    files["README.md"] = readme((CHART / "README.md").read_text(), (CHART / "values.yaml").read_text())
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for name, text in generated().items():
        path = CHART / name
        if path.exists() and path.read_text() == text:
            continue
        stale.append(name)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if args.check and stale:
        print(f"out of date in {CHART.relative_to(ROOT)}: {', '.join(stale)}; run: python3 charts/generate.py",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
