"""docs/benchmarks.md is written by more than one benchmark command: each owns one marked block
(`<!-- begin NAME -->` ... `<!-- end NAME -->`) and rewrites only that block."""

from pathlib import Path

REPORT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def write_block(name: str, markdown: str, path: Path = REPORT) -> Path:
    """Replaces the block `name` of the report with `markdown` (appends it when absent)."""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{markdown.rstrip()}\n{end}\n"
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1].lstrip("\n")
    else:
        text = (text.rstrip() + "\n\n" if text.strip() else "") + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
