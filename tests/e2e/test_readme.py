"""README.md as written: every command of its fenced blocks runs, in README order, against a real
devnet this test starts (`ape run devnet up`, with its keepers and simulated traders), or is named
in NOT_RUN with the reason it cannot run here.

Where the dispositions live: here, in two dicts, not as HTML comments in README.md. The reasons are
about this suite (what it can run, and which other test covers the rest), not about the commands,
and the README stays free of text its readers see in a terminal but not on a rendered page.
They are keyed by the command itself rather than by a block's first line, because blocks mix
commands that run with commands that cannot (a real network's deploy beside the local one).

- A fenced block is a command block unless PROSE_BLOCKS names its first line;
- in a command block, each line is a command (`$ cmd` lines are commands followed by their exact
  output; a ```python block is one command, whose `print` lines end in the values they print);
- a command (its line without a trailing ` # comment`) is run unless NOT_RUN names it;
- a README command nobody can run (no step kind for it, no NOT_RUN entry), and a NOT_RUN or
  PROSE_BLOCKS entry no README line matches, fail the test.

The commands run in a scratch clone: a temporary directory linking this checkout's files (its
compiled contracts and node_modules too) but not its devnet state or manifests, with `.venv`
linking the running interpreter's environment, so that the README's relative paths (`deployments/`,
`.devnet/`, `data/paths/btc.csv`, `source .venv/bin/activate`) resolve as in a clone without
touching this checkout's own devnet. The devnet listens on a free port, substituted for the
README's 8545. All commands run in one Python process (tests/e2e/readme_runner.py), which imports
Ape once instead of once per command.
"""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from vyperp.devnet.anvil import free_port, stop_process
from vyperp.devnet.settings import DEFAULT_PORT
from vyperp.devnet.status import process_exists

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
RUNNER = Path(__file__).with_name("readme_runner.py")
APE = str(Path(sys.executable).with_name("ape"))

# The scratch clone links every entry of the checkout but these: its own devnet and manifests
# (the clone's start empty), its environment (the clone's .venv is the one running this test).
NOT_LINKED = {".git", ".venv", ".devnet", "deployments", ".silverback-sessions"}

PROSE_BLOCKS = {
    "contracts/            Engine.vy (entry points, composes the modules), EngineRisk.vy "
    "(liquidation and": "the repository layout",
}

BOT_SERVICE = "a service until stopped; tests/e2e/test_bots.py runs the bots with `silverback run`"
SUITE_RUN = "a test run inside the suite"
SCENARIO = "a stress run on its own anvil; tests/e2e/test_scenarios.py runs each at reduced size"
NOT_RUN = {
    "make devnet": "`ape run devnet up` until Ctrl-C: this test runs that devnet",
    'make devnet DEVNET_ARGS="--no-dashboard --duration 600"': "the same devnet for ten minutes",
    "make devnet-reset": "deletes the checkout's .devnet/ and local manifest (this test's devnet "
                         "lives in a temporary directory)",
    "make test": "the whole suite, this test included",
    "make fuzz": "the long property run, minutes",
    "make bench": "the gas benchmark, rewrites docs/benchmarks.md",
    "make bench-keepers": "the liquidator benchmark, minutes, rewrites docs/benchmarks.md",
    "pytest tests/unit/test_vectors.py -p no:ape_test": SUITE_RUN,
    "ape test tests/e2e/test_sdk.py": SUITE_RUN,
    "make scenario NAME=crash-50": SCENARIO,
    "make scenario NAME=crash-90 SCENARIO_ARGS=--reduced": SCENARIO,
    "make scenarios": "every scenario at full size, minutes; rewrites docs/scenarios.md",
    "ape run devnet dashboard": "a live display until Ctrl-C; test_dashboard.py renders it",
    "ape run deploy --network <ecosystem:network> --account <alias>": "a real network and account",
    "silverback run oracle --network ethereum:local:foundry": BOT_SERVICE,
    "silverback run funding --network ethereum:local:foundry --account TEST::5": BOT_SERVICE,
    "silverback run orders --network ethereum:local:foundry --account TEST::9": BOT_SERVICE,
    "silverback run liquidator --network ethereum:local:foundry --account TEST::1": BOT_SERVICE,
    "silverback run adl --network ethereum:local:foundry --account TEST::0": BOT_SERVICE,
}  # fmt: skip

NUMBER = re.compile(r"-?\d[\d_]*(?:\.\d+)?")
APE_LOG_LINE = re.compile(r"^[A-Z]+: ")


@dataclass(frozen=True)
class Command:
    line: int  # README line number
    text: str  # the command without its trailing comment (a python block: the whole script)
    expected_output: str | None = None  # a `$ cmd` line's output as the README shows it
    is_python: bool = False

    @property
    def key(self) -> str:
        return self.text.splitlines()[0]


@dataclass(frozen=True)
class Block:
    line: int
    language: str
    lines: tuple[str, ...]


def fenced_blocks(readme: str) -> list[Block]:
    blocks, opened = [], None
    for number, line in enumerate(readme.splitlines(), start=1):
        if line.startswith("```"):
            if opened is None:
                opened = (number, line.removeprefix("```").strip(), [])
            else:
                blocks.append(Block(opened[0], opened[1], tuple(opened[2])))
                opened = None
        elif opened is not None:
            opened[2].append(line)
    assert opened is None, f"README.md:{opened[0]}: a fenced block is never closed"
    return blocks


def without_comment(line: str) -> str:
    return line.split(" #", 1)[0].strip()


def commands_of(block: Block) -> list[Command]:
    if block.language == "python":
        return [Command(block.line + 1, "\n".join(block.lines), is_python=True)]
    commands = []
    for offset, line in enumerate(block.lines, start=1):
        number = block.line + offset
        if line.startswith("$ "):
            commands.append(Command(number, without_comment(line[2:]), expected_output=""))
        elif commands and commands[-1].expected_output is not None:
            previous = commands.pop()  # an output line of the `$ cmd` above
            output = f"{previous.expected_output}\n{line}".strip("\n")
            commands.append(Command(previous.line, previous.text, expected_output=output))
        elif without_comment(line):
            commands.append(Command(number, without_comment(line)))
    return commands


def readme_commands(readme: str) -> tuple[list[Command], list[str]]:
    """The README's commands in order, and what is wrong with the dispositions (empty when none)."""
    commands, problems, prose_seen = [], [], set()
    for block in fenced_blocks(readme):
        if block.lines and block.lines[0] in PROSE_BLOCKS:
            prose_seen.add(block.lines[0])
        else:
            commands += commands_of(block)
    problems += [f"PROSE_BLOCKS names a block README.md no longer has: {first!r}"
                 for first in PROSE_BLOCKS.keys() - prose_seen]  # fmt: skip
    keys = {command.key for command in commands}
    problems += [f"NOT_RUN names a command README.md no longer has: {key!r}"
                 for key in NOT_RUN.keys() - keys]  # fmt: skip
    problems += [
        f"README.md:{command.line}: no way to run {command.key!r}: add it to NOT_RUN with the "
        "reason, or to PROSE_BLOCKS if its block holds no commands"
        for command in commands
        if command.key not in NOT_RUN and step_kind(command) is None
    ]
    return commands, problems


def step_kind(command: Command) -> str | None:
    if command.is_python:
        return "python"
    return {"ape": "ape", "export": "export", "source": "shell"}.get(command.text.split()[0])


def step(command: Command, port: int) -> dict:
    text = command.text.replace(f"127.0.0.1:{DEFAULT_PORT}", f"127.0.0.1:{port}")
    kind = step_kind(command)
    arguments = shlex.split(text)[1:] if kind == "ape" else None
    return {"kind": kind, "text": text, "arguments": arguments}


def printed_values_match(script: str, stdout: str) -> list[str]:
    """Each `print(...)  # values` line of the script against the line it printed: a value written
    plainly must be exact; one after `≈` must match to the digits written. Ape's log lines (`INFO:
    ...`) are not the script's prints."""
    comments = [line.partition("#")[2] for line in script.splitlines() if "print(" in line]
    printed = [line for line in stdout.splitlines() if not APE_LOG_LINE.match(line)]
    if len(printed) != len(comments):
        return [f"{len(comments)} print calls, {len(printed)} lines printed:\n{stdout}"]
    mismatches = []
    for comment, output in zip(comments, printed, strict=True):
        want = [Decimal(number.replace("_", "")) for number in NUMBER.findall(comment)]
        got = [Decimal(value) for value in output.split()][: len(want)]
        if "≈" in comment:
            got = [value.quantize(digits) for value, digits in zip(got, want, strict=False)]
        if got != want:
            mismatches.append(f"printed {output!r}, README says {comment.strip()!r}")
    return mismatches


def scratch_project(root: Path) -> Path:
    root.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in NOT_LINKED:
            (root / entry.name).symlink_to(entry)
    (root / ".venv").symlink_to(sys.prefix)  # the environment running this test
    (root / "deployments").mkdir()
    return root


def environment() -> dict:
    """This process's environment without a devnet address, with this checkout's vyperp first."""
    variables = {key: value for key, value in os.environ.items() if key != "APE_FOUNDRY_HOST"}
    search_path = [str(REPO), variables.get("PYTHONPATH")]
    variables["PYTHONPATH"] = os.pathsep.join(filter(None, search_path))
    return variables


def start_devnet(project: Path, port: int, log: Path) -> subprocess.Popen:
    # --duration: the devnet ends on its own even if this test dies before stopping it
    devnet = subprocess.Popen(
        [APE, "run", "devnet", "up", "--no-dashboard", "--port", str(port), "--duration", "300"],
        cwd=project, env=environment(), stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while "devnet created at block" not in log.read_text():
        if devnet.poll() is not None or time.monotonic() > deadline:
            stop_process(devnet)
            pytest.fail(f"the devnet did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return devnet


def test_every_command_of_the_readme_is_run_or_has_a_reason():
    _, problems = readme_commands(README.read_text())
    assert not problems, "\n".join(problems)


def test_a_new_command_or_a_stale_disposition_is_reported():
    readme = README.read_text().replace("make fuzz ", "make fuzzing ").replace(
        "```python", "```\nnpm run nothing\n```\n\n```python"
    )
    _, problems = readme_commands(readme)
    assert "NOT_RUN names a command README.md no longer has: 'make fuzz'" in problems
    assert any("no way to run 'make fuzzing'" in problem for problem in problems)
    assert any("no way to run 'npm run nothing'" in problem for problem in problems)


def run_beside_devnet(project: Path, port: int, steps: list[dict], work: Path) -> list[dict]:
    """The devnet started in `project`; the steps run by readme_runner.py once it is up."""
    steps_file, go_file, results_file = work / "steps.json", work / "go", work / "results.json"
    runner_log = work / "runner.log"
    steps_file.write_text(json.dumps(steps))
    # the runner imports Ape while the devnet starts
    runner = subprocess.Popen(
        [sys.executable, str(RUNNER), str(steps_file), str(go_file), str(results_file)],
        cwd=project, env=environment(), stdout=runner_log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        devnet = start_devnet(project, port, work / "devnet.log")
        try:
            go_file.touch()
            runner.wait(timeout=240)
        finally:
            stop_process(devnet)
            # a supervisor that had to be killed leaves anvil behind: end it by its recorded pid
            anvil_pid = project / ".devnet" / "anvil.pid"
            if anvil_pid.is_file() and process_exists(pid := int(anvil_pid.read_text())):
                os.kill(pid, signal.SIGKILL)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    results = json.loads(results_file.read_text()) if results_file.exists() else []
    assert runner.returncode == 0 and len(results) == len(steps), runner_log.read_text()[-3000:]
    return results


def failure(command: Command, result: dict) -> str | None:
    """Why the command's result is not what README.md says (None: it is)."""
    output = (result["stdout"] + result["stderr"]).strip()
    if command.expected_output is not None:
        refused = command.expected_output.startswith("error:")
        if output == command.expected_output and (result["exit_code"] != 0) == refused:
            return None
        return f"printed:\n{output[-1500:]}\nREADME shows:\n{command.expected_output}"
    if result["exit_code"] != 0:
        return f"exit {result['exit_code']}:\n{output[-1500:]}"
    if command.is_python and (mismatches := printed_values_match(command.text, result["stdout"])):
        return "\n".join(mismatches)
    return None


def test_printed_values_are_checked_against_the_comments():
    script = "print(fill)  # 150000.075 90.000045\nprint(health)  # ≈ 29909.92 15000\nprint(x)\n"
    assert printed_values_match(script, "150000.075000 90.000045\n29909.924955 15000.0\n1 2\n") == []
    (mismatch,) = printed_values_match(script, "150000.076 90.000045\n29909.924 15000\n1\n")
    assert mismatch.startswith("printed '150000.076 90.000045'")
    (approximate,) = printed_values_match(script, "150000.075 90.000045\n29909.926 15000\n1\n")
    assert "≈ 29909.92 15000" in approximate
    (missing,) = printed_values_match(script, "150000.075 90.000045\n")
    assert missing.startswith("3 print calls, 1 lines printed")


def test_readme_commands_work_as_written_beside_the_devnet(tmp_path):
    commands, problems = readme_commands(README.read_text())
    assert not problems, "\n".join(problems)
    runnable = [command for command in commands if command.key not in NOT_RUN]
    port = free_port()
    steps = [step(command, port) for command in runnable]
    results = run_beside_devnet(scratch_project(tmp_path / "clone"), port, steps, tmp_path)

    for command, result in zip(runnable, results, strict=True):
        print(f"{result['seconds']:5.1f} s  {command.key}")
    failures = [f"README.md:{command.line}: {command.key}\n{why}"
                for command, result in zip(runnable, results, strict=True)
                if (why := failure(command, result))]  # fmt: skip
    assert not failures, "\n\n".join(failures)
