"""Runs README.md's commands, in order, in one Python process:
`python readme_runner.py STEPS GO RESULTS`.

tests/e2e/test_readme.py writes the steps (JSON) and reads one result per step (exit code, stdout,
stderr, seconds) from RESULTS, rewritten after each step so that a run cut short still shows how
far it got. The runner imports Ape while the devnet starts, then waits for the file GO (the devnet
is up).

Why one process: each `ape` shell command spends about 5 s importing Ape and its plugins; here Ape
is imported once. An `ape ...` line runs through `ape._cli.cli`, the function the `ape` console
script calls (`sys.exit(cli())`), driven by click's CliRunner, which passes the line's arguments to
the same `cli.main` and captures its output and exit code. Ape's console messages go through
click.echo to the current stdout/stderr, so they are captured too.

Step kinds:
- ``ape``: the arguments after ``ape``;
- ``export``: ``NAME=VALUE`` into this process's environment. Ape reads its configuration (e.g.
  ``APE_FOUNDRY_HOST``) when first used, so an export has to precede the first ``ape`` step;
- ``shell``: a line for bash (``source ...``), run in a child bash;
- ``python``: a script, executed as ``__main__`` in this process with its output captured.
"""

import contextlib
import io
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path


def run_ape(arguments: list[str]) -> tuple[int, str, str]:
    from ape._cli import cli
    from click.testing import CliRunner

    result = CliRunner(mix_stderr=False).invoke(cli, arguments, prog_name="ape")
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(*result.exc_info))
    return result.exit_code, result.stdout, stderr


def run_export(assignment: str, ape_started: bool) -> tuple[int, str, str]:
    if ape_started:
        return 1, "", f"export {assignment}: after an ape command, Ape has read its configuration"
    name, _, value = assignment.partition("=")
    os.environ[name] = os.path.expandvars(value)
    return 0, "", ""


def run_shell(line: str) -> tuple[int, str, str]:
    finished = subprocess.run(["bash", "-ec", line], capture_output=True, text=True, timeout=30)
    return finished.returncode, finished.stdout, finished.stderr


def run_python(source: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    exit_code = 0
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            exec(compile(source, "README.md (python block)", "exec"), {"__name__": "__main__"})
        except Exception:  # the script's failure is the step's result, shown with its traceback
            traceback.print_exc()
            exit_code = 1
    return exit_code, stdout.getvalue(), stderr.getvalue()


def wait_for(go_file: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not go_file.exists():
        if time.monotonic() > deadline:
            sys.exit(f"{go_file} did not appear within {timeout:.0f} s")
        time.sleep(0.1)


def main(steps_file: Path, go_file: Path, results_file: Path) -> None:
    # Importing reads no configuration (that happens at the first command, after the exports).
    import ape._cli  # noqa: F401
    import click.testing  # noqa: F401

    wait_for(go_file)
    results = []
    ape_started = False
    for step in json.loads(steps_file.read_text()):
        started = time.monotonic()
        kind, text = step["kind"], step["text"]
        if kind == "ape":
            exit_code, stdout, stderr = run_ape(step["arguments"])
            ape_started = True
        elif kind == "export":
            exit_code, stdout, stderr = run_export(text.removeprefix("export").strip(), ape_started)
        elif kind == "shell":
            exit_code, stdout, stderr = run_shell(text)
        elif kind == "python":
            exit_code, stdout, stderr = run_python(text)
            ape_started = True
        else:
            raise ValueError(f"unknown step kind {kind!r}")
        seconds = time.monotonic() - started
        results.append({"exit_code": exit_code, "stdout": stdout, "stderr": stderr,
                        "seconds": seconds})  # fmt: skip
        results_file.write_text(json.dumps(results))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
