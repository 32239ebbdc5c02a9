"""The package's layers (ARCHITECTURE.md): imports flow downward only, the scenarios and the
measurement layer do not import one another, and no private name crosses a module boundary.

The checker reads the source (ast), so it sees imports inside functions too, and it is tested
on small invented modules that break each rule, so a pass on the real package means something.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "w2s_helpers"

# Layer of each folder: a module may import its own folder and any folder of a lower layer.
# Folders of one layer (the two scenarios and the measurement layer) may not import one another.
LAYERS = {"core": 0, "rewards": 1, "policies": 1, "deception": 1, "mitigations": 2, "report": 3, "course": 4}
TOP = 5  # w2s_helpers/__init__.py and __main__.py


def folder_of(module: str) -> str:
    """'w2s_helpers.rewards.lab' -> 'rewards'; the package's own top-level files -> ''."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else ""


def layer_of(folder: str) -> int:
    if folder == "":
        return TOP
    if folder not in LAYERS:
        raise KeyError(f"folder {folder!r} has no layer: add it to LAYERS and to ARCHITECTURE.md")
    return LAYERS[folder]


def resolve(module: str, node: ast.ImportFrom) -> str:
    """Absolute module an ImportFrom names (relative imports resolved against ``module``)."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")[: -node.level]
    return ".".join(base + ([node.module] if node.module else []))


def violations(module: str, source: str) -> list[str]:
    """Every broken rule in one module's source, as readable lines."""
    out = []
    here = folder_of(module)
    tree = ast.parse(source)
    package_aliases = {}          # local name -> w2s_helpers module it is bound to
    for node in ast.walk(tree):
        targets: list[tuple[str, list[str]]] = []
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("w2s_helpers"):
                    targets.append((a.name, []))
                    package_aliases[a.asname or a.name] = a.name
        elif isinstance(node, ast.ImportFrom):
            target = resolve(module, node)
            if target.startswith("w2s_helpers"):
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    if (PACKAGE / Path(*sub.split(".")[1:])).with_suffix(".py").exists() \
                            or (PACKAGE / Path(*sub.split(".")[1:]) / "__init__.py").exists():
                        targets.append((sub, []))            # a module imported from its package
                        package_aliases[a.asname or a.name] = sub
                    else:
                        targets.append((target, [a.name]))   # a name imported from a module
        for target, names in targets:
            there = folder_of(target) if target.count(".") >= 2 else (
                target.split(".")[1] if target.count(".") == 1 and target.split(".")[1] in LAYERS else "")
            if there != here:
                if layer_of(there) > layer_of(here):
                    out.append(f"{module} (layer {here or 'top'}) imports {target} from a higher layer ({there})")
                elif layer_of(there) == layer_of(here):
                    out.append(f"{module} ({here}) imports {target} from a sibling folder ({there})")
            for name in names:
                if name.startswith("_") and not name.startswith("__"):
                    out.append(f"{module} imports the private name {name} from {target}")
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in package_aliases and node.attr.startswith("_") and not node.attr.startswith("__")):
            out.append(f"{module} uses the private name {node.attr} of {package_aliases[node.value.id]}")
    return out


def package_modules() -> dict[str, str]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        out[".".join(rel.parts)] = path.read_text(encoding="utf-8")
    return out


def test_every_folder_has_a_layer():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(LAYERS), f"folders {sorted(folders)} vs layers {sorted(LAYERS)}"


def test_the_package_keeps_its_layers():
    found = [v for module, source in package_modules().items() for v in violations(module, source)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("module, source, expected", [
    ("w2s_helpers.core.data", "from w2s_helpers.rewards import heads\n", "higher layer"),
    ("w2s_helpers.core.data", "def f():\n    from w2s_helpers.course.runner import run_all\n", "higher layer"),
    ("w2s_helpers.core.data", "from ..course import runner\n", "higher layer"),
    ("w2s_helpers.policies.lab", "from w2s_helpers.rewards.lab import build\n", "sibling folder"),
    ("w2s_helpers.deception.scores", "import w2s_helpers.policies.logps\n", "sibling folder"),
    ("w2s_helpers.policies.encoding", "from w2s_helpers.core.batching import _pad\n", "private name _pad"),
    ("w2s_helpers.policies.encoding", "from w2s_helpers.core import decoder\nx = decoder._Stop\n", "private name _Stop"),
])
def test_the_checker_catches_each_broken_rule(module, source, expected):
    found = violations(module, source)
    assert any(expected in v for v in found), found


@pytest.mark.parametrize("module, source", [
    ("w2s_helpers.rewards.lab", "from w2s_helpers.core import data\nfrom w2s_helpers.rewards import heads\n"),
    ("w2s_helpers.course.runner", "from w2s_helpers.policies.lab import PolicyLab\n"),
    ("w2s_helpers.core.decoder", "from .batching import pad_ids\n"),
])
def test_the_checker_allows_downward_and_same_folder_imports(module, source):
    assert violations(module, source) == []


def notebook_imports() -> dict[str, set[str]]:
    """Package module ('core/data') -> chapters ('0', '1b', ...) whose code cells import it."""
    import json
    import re

    out: dict[str, set[str]] = {}
    for nb in sorted((PACKAGE.parent / "notebooks").glob("[0-9][0-9]*.ipynb")):
        chapter = nb.name.split("_")[0].lstrip("0") or "0"
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        for m in re.finditer(r"^\s*from w2s_helpers\.([\w.]+) import (.+)$", code, re.M):
            where, names = m.group(1).replace(".", "/"), [n.split(" as ")[0].strip() for n in m.group(2).split(",")]
            for name in names:
                module = f"{where}/{name}" if (PACKAGE / where / f"{name}.py").exists() else where
                out.setdefault(module, set()).add(chapter)
    return out


def readme_table() -> dict[str, set[str]]:
    """Module -> chapters, from the README's "Modules and chapters" table (its third column)."""
    text = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    section = text.split("## Modules and chapters", 1)[1].split("\n## ", 1)[0]
    out = {}
    for line in section.splitlines():
        cols = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cols) >= 3 and cols[0].startswith("`") and cols[0].endswith("`"):
            chapters = cols[2].split("(")[0]
            out[cols[0].strip("`")] = {c.strip() for c in chapters.split(",") if c.strip() not in ("", "—")}
    return out


def test_readme_module_table_lists_every_module_and_what_the_chapters_import():
    table = readme_table()
    modules = {str(p.relative_to(PACKAGE).with_suffix("")) for p in PACKAGE.glob("*/*.py") if p.name != "__init__.py"}
    assert set(table) == modules, f"missing from the README: {sorted(modules - set(table))}; " \
                                  f"not in the package: {sorted(set(table) - modules)}"
    imports = notebook_imports()
    wrong = {m: (sorted(table[m]), sorted(imports.get(m, set()))) for m in table if table[m] != imports.get(m, set())}
    assert not wrong, f"module: (README, notebooks) {wrong}"
