"""The rooms of the README's "Architecture": listed in order, and imported only upwards."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import bayesactiv

ROOT = Path(__file__).resolve().parents[2]
ROOMS = list(bayesactiv._ROOMS)


def _listed_rooms() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("## Architecture", 1)[1].split("```", 2)[1]
    return re.findall(r"^  ([a-z]+)/ ", block, flags=re.MULTILINE)


def test_the_readme_lists_every_room_in_the_packages_order():
    assert _listed_rooms() == ROOMS
    on_disk = sorted(p.name for p in (ROOT / "bayesactiv").iterdir()
                     if p.is_dir() and (p / "__init__.py").exists())
    assert sorted(ROOMS) == on_disk


def _module_level_imports(path: Path) -> list[str]:
    found = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return [m for m in found if m.startswith("bayesactiv.")]


def test_each_room_imports_only_the_rooms_above_it_at_module_level():
    """Imports inside functions (at call time) may go either way; module-level ones may not."""
    wrong = []
    for room in ROOMS:
        for path in sorted((ROOT / "bayesactiv" / room).rglob("*.py")):
            for module in _module_level_imports(path):
                other = module.split(".")[1]
                if other in ROOMS and ROOMS.index(other) > ROOMS.index(room):
                    wrong.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not wrong, "\n".join(wrong)
