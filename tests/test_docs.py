"""The README documents what the code does: every hyperparameter, task, command and sweep file."""

from __future__ import annotations

from pathlib import Path

from typer.main import get_command

from study.app.cli import app
from study.spec.hyperparameters import HYPERPARAMETERS
from study.spec.sweep_file import SweepConfig
from study.spec.tasks import TASK_NAMES

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_every_hyperparameter_is_documented_with_its_default():
    for name, dimension in HYPERPARAMETERS.items():
        row = next((line for line in README.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, f"README has no row for hyperparameter {name}"
        default = dimension.default
        if isinstance(default, bool):
            shown = str(default).lower()
        elif isinstance(default, float):
            shown = f"{default:g}"
        else:
            shown = str(default)
        assert f"| {shown} |" in row, f"README default for {name} should be {shown}: {row}"


def test_every_task_and_top_level_key_is_documented():
    for task in TASK_NAMES:
        assert f"| `{task}` |" in README, task
    for name, field in SweepConfig.model_fields.items():
        key = field.alias or name  # as a sweep file writes it
        assert f"`{key}`" in README, key


def test_every_command_is_documented_and_the_two_commands_exist():
    for command in get_command(app).commands:
        assert f"`study {command}" in README, command
    for script in ("scripts/quickstart.sh", "scripts/test.sh"):
        assert f"bash {script}" in README and (REPO / script).exists()
    assert "scripts/test.sh" in (REPO / ".ci" / "run").read_text()


LAYOUT_START, LAYOUT_END = "<!-- layout: generated from the package tree by tests/test_docs.py -->", "<!-- /layout -->"
FLOORS = ["spec", "train", "store", "search", "analysis", "reporting", "app"]  # bottom floor first


def _first_sentence(path: Path) -> str:
    import ast

    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    return paragraph.split(". ")[0].rstrip(".") + "." if paragraph else ""


def package_layout() -> str:
    """The README's layout block: every subpackage and module of `study/`, each with its docstring's first sentence."""
    package = REPO / "study"
    found = sorted(p.name for p in package.iterdir() if (p / "__init__.py").exists())
    assert found == sorted(FLOORS), f"subpackages {found}: add a new one to FLOORS in its place"
    lines = ["```", f"study/__init__.py  {_first_sentence(package / '__init__.py')}"]
    for floor in FLOORS:
        lines.append(f"study/{floor}/  {_first_sentence(package / floor / '__init__.py')}")
        for module in sorted((package / floor).glob("*.py")):
            if module.name != "__init__.py":
                lines.append(f"    {module.name}  {_first_sentence(module)}")
    lines.append("```")
    return "\n".join(lines)


def test_the_readme_layout_is_the_package_tree():
    assert LAYOUT_START in README and LAYOUT_END in README
    shown = README.split(LAYOUT_START, 1)[1].split(LAYOUT_END, 1)[0].strip()
    assert shown == package_layout(), "README layout out of date; the block should read:\n" + package_layout()


def test_every_module_opens_with_a_docstring():
    for module in (REPO / "study").rglob("*.py"):
        assert _first_sentence(module), f"{module.relative_to(REPO)} has no docstring"
