"""action.yml: parsed, checked for script injection, and run step by step as the runner would.

The install step builds keyscan from this checkout into a fresh virtualenv with
pip (needs PyPI for the build backend), once per module.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitrepo import BASE_ENV, Repo
from keys import make_key

ROOT = Path(__file__).resolve().parents[1]
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def load_action() -> dict[str, Any]:
    action: dict[str, Any] = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    return action


def steps() -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = load_action()["runs"]["steps"]
    return result


def test_is_a_composite_action_with_the_promised_interface() -> None:
    action = load_action()
    assert action["runs"]["using"] == "composite"
    assert set(action["inputs"]) >= {"args", "verify", "sarif-file", "fail-on-findings"}
    assert set(action["outputs"]) == {"findings", "sarif-file"}
    assert action["inputs"]["fail-on-findings"]["default"] == "true"
    assert action["inputs"]["verify"]["default"] == "false"


def test_no_expression_is_interpolated_into_a_script() -> None:
    # Inputs, event data and paths reach the shell only as environment variables:
    # a branch name or PR title such as `$(curl …)` is then data, never code.
    for step in steps():
        if "run" in step:
            assert "${{" not in step["run"], step["name"]
            assert step["shell"] == "bash"
        for value in step.get("env", {}).values():
            for expression in EXPRESSION.findall(str(value)):
                assert expression.split(".")[0] in ("inputs", "github", "runner"), expression
                assert not expression.startswith("github.event"), expression


# --- running the steps --------------------------------------------------------------------


@dataclass
class StepRun:
    code: int
    out: str
    err: str
    outputs: dict[str, str]  # the action's outputs, as a later step would see them
    summary: str


class Runner:
    """Runs action.yml's steps the way GitHub's runner runs a composite action."""

    def __init__(self, temp: Path) -> None:
        self.temp = temp
        self.temp.mkdir(parents=True, exist_ok=True)

    def run_step(self, step: dict[str, Any], workspace: Path, inputs: dict[str, str],
                 event: dict[str, Any]) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
        defaults = {name: spec.get("default", "") for name, spec in load_action()["inputs"].items()}
        context = {
            "github.action_path": str(ROOT),
            "github.workspace": str(workspace),
            "runner.temp": str(self.temp),
            **{f"inputs.{name}": value for name, value in {**defaults, **inputs}.items()},
        }
        step_env = {
            name: EXPRESSION.sub(lambda m: context[m.group(1)], str(value))
            for name, value in step.get("env", {}).items()
        }
        event_file = self.temp / "event.json"
        event_file.write_text(json.dumps(event), encoding="utf-8")
        output, summary = self.temp / "output", self.temp / "summary.md"
        for path in (output, summary):
            path.write_text("", encoding="utf-8")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("GITHUB_", "RUNNER_", "VIRTUAL_ENV"))}
        env.update(BASE_ENV)
        env.update(
            GITHUB_ACTIONS="true", GITHUB_EVENT_NAME="push", GITHUB_EVENT_PATH=str(event_file),
            GITHUB_WORKSPACE=str(workspace), GITHUB_OUTPUT=str(output),
            GITHUB_STEP_SUMMARY=str(summary), GITHUB_ACTION_PATH=str(ROOT),
            RUNNER_TEMP=str(self.temp), **step_env,
        )
        script = self.temp / "step.sh"
        script.write_text(step["run"], encoding="utf-8")
        done = subprocess.run(  # the runner's `shell: bash`
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=workspace, env=env, capture_output=True, text=True, timeout=600,
        )
        return done, output, summary

    def scan(self, workspace: Path, event: dict[str, Any], **inputs: str) -> StepRun:
        step = next(s for s in steps() if s.get("id") == "scan")
        done, output, summary = self.run_step(step, workspace, inputs, event)
        written = dict(
            line.split("=", 1) for line in output.read_text(encoding="utf-8").splitlines() if line
        )
        outputs = {
            name: EXPRESSION.sub(
                lambda m: written.get(m.group(1).removeprefix("steps.scan.outputs."), ""),
                spec["value"],
            )
            for name, spec in load_action()["outputs"].items()
        }
        return StepRun(done.returncode, done.stdout, done.stderr, outputs,
                       summary.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Runner:
    """The install step, run once: a fresh virtualenv with keyscan built from this checkout."""
    runner = Runner(tmp_path_factory.mktemp("runner") / "temp")
    install = steps()[0]
    assert "pip install" in install["run"]
    done, _, _ = runner.run_step(install, ROOT, {}, {})
    assert done.returncode == 0, done.stdout + done.stderr
    assert (runner.temp / "keyscan-venv" / "bin" / "keyscan").exists()
    return runner


@pytest.fixture
def pushed(tmp_path: Path) -> tuple[Path, dict[str, Any], str]:
    """A repository whose last push added one key."""
    secret = make_key("posteverywhere", random.Random(11))
    repo = Repo(tmp_path / "workspace")
    repo.write("README.md", "hello\n")
    before = repo.commit()
    repo.write("deploy/settings.py", f"TOKEN = '{secret}'\n")
    after = repo.commit()
    return repo.path, {"ref": "refs/heads/main", "before": before, "after": after}, secret


@pytest.mark.network  # pip-installs keyscan from the package index
def test_findings_fail_the_step_by_default(
    runner: Runner, pushed: tuple[Path, dict[str, Any], str]
) -> None:
    workspace, event, secret = pushed

    result = runner.scan(workspace, event)

    assert result.code == 1, result.err
    assert result.outputs == {"findings": "1", "sarif-file": ""}
    assert re.search(r"^::error file=deploy/settings.py,line=1,", result.out, re.MULTILINE)
    assert "1 secret found" in result.summary
    assert secret not in result.out + result.err + result.summary


@pytest.mark.network  # pip-installs keyscan from the package index
def test_sarif_file_and_fail_on_findings_false(
    runner: Runner, pushed: tuple[Path, dict[str, Any], str]
) -> None:
    workspace, event, secret = pushed

    result = runner.scan(workspace, event, **{"sarif-file": "keyscan.sarif",
                                              "fail-on-findings": "false"})

    assert result.code == 0, result.err
    assert result.outputs == {"findings": "1", "sarif-file": "keyscan.sarif"}
    sarif = (workspace / "keyscan.sarif").read_text(encoding="utf-8")
    assert len(json.loads(sarif)["runs"][0]["results"]) == 1
    assert secret not in sarif


@pytest.mark.network  # pip-installs keyscan from the package index
def test_clean_push_passes(runner: Runner, tmp_path: Path) -> None:
    repo = Repo(tmp_path / "clean")
    repo.write("a.txt", "nothing\n")
    before = repo.commit()
    repo.write("b.txt", "nothing either\n")
    after = repo.commit()

    result = runner.scan(repo.path, {"before": before, "after": after})

    assert result.code == 0, result.err
    assert result.outputs["findings"] == "0"
    assert "No secrets found." in result.summary


@pytest.mark.network  # pip-installs keyscan from the package index
def test_args_are_split_like_a_shell_but_never_run(
    runner: Runner, pushed: tuple[Path, dict[str, Any], str]
) -> None:
    workspace, event, _ = pushed
    (workspace / "report dir").mkdir()

    quoted = runner.scan(workspace, event, args="--format json --output 'report dir/out.json'")

    assert quoted.code == 1, quoted.err
    report = json.loads((workspace / "report dir" / "out.json").read_text(encoding="utf-8"))
    assert [f["path"] for f in report["findings"]] == ["deploy/settings.py"]

    hostile = runner.scan(workspace, event, args="$(touch pwned1) `touch pwned2`; touch pwned3")

    assert hostile.code == 2  # keyscan refuses the stray words; the step fails
    assert not list(workspace.glob("pwned*"))


@pytest.mark.network  # pip-installs keyscan from the package index
def test_errors_fail_the_step_even_without_fail_on_findings(
    runner: Runner, pushed: tuple[Path, dict[str, Any], str]
) -> None:
    workspace, event, _ = pushed

    result = runner.scan(workspace, event, args="--config missing.yaml",
                         **{"fail-on-findings": "false"})

    assert result.code == 2
    assert "missing.yaml" in result.err
    assert "findings" not in result.outputs or result.outputs["findings"] == ""
