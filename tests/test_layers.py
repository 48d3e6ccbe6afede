"""The package's layers: every import (at module level or inside a function) runs down them,
no import cycle hides behind a function-level import, and every module imports alone."""

import ast
import subprocess
import sys
from pathlib import Path

import segme

SRC = Path(segme.__file__).parent
# lowest first; a module may import its own layer and the ones below it
LAYERS = [
    ("segme._version", "segme.cards", "segme.weights"),  # model cards; built-in names
    ("segme.io",),  # files, images, videos, cameras
    ("segme.preprocess", "segme.postprocess"),
    ("segme.models",),  # torch networks, their encoders and reading their files
    # backends; streams (and the model-free baseline, which streams too); composites
    ("segme.runtime", "segme.temporal", "segme.bgsub", "segme.effects"),
    ("segme.segmenter",),
    ("segme.data",),  # training data
    ("segme.train", "segme.evaluate", "segme.export"),
    ("segme.serve",),
    ("segme.cli", "segme.batch"),  # batch: the photo verbs' naming and rendering, on Ray
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def imports(name: str, path: Path) -> set[str]:
    """The segme modules that ``name`` imports anywhere in its file."""
    known = set(modules())
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            subs = {f"{base}.{a.name}" for a in node.names}  # from pkg import module
            found.update(subs & known)
            if subs - known:  # names defined in base itself
                found.add(base)
    return {m for m in found if m in known and m != name}


def layer(name: str) -> int:
    for i, prefixes in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return i
    return len(LAYERS)  # the package itself: the public API above everything


def test_every_module_has_a_layer():
    assert [m for m in modules() if layer(m) == len(LAYERS) and m != "segme"] == []


def test_imports_run_down_the_layers():
    upward = [f"{name} (layer {layer(name)}) imports {dep} (layer {layer(dep)})"
              for name, path in modules().items() for dep in sorted(imports(name, path))
              if layer(dep) > layer(name)]
    assert upward == []


def test_no_import_cycles_between_modules():
    graph = {name: imports(name, path) for name, path in modules().items()}
    # a package's __init__ may gather its own submodules (``segme.models`` registers its
    # families); an edge from a submodule back up to its package is the cycle to avoid
    edges = {n: {d for d in deps if not d.startswith(n + ".")} for n, deps in graph.items()}
    cycles = []

    def visit(node, stack, seen):
        for dep in edges.get(node, ()):
            if dep in stack:
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in seen:
                seen.add(dep)
                visit(dep, stack + [dep], seen)

    for start in edges:
        visit(start, [start], {start})
    assert sorted(set(cycles)) == []


def test_every_module_imports_alone():
    """Each module imported first, in a fresh set of segme modules: a cycle that only an
    import order hides fails here."""
    names = [m for m in modules() if m != "segme"]
    code = (
        "import importlib, sys\n"
        "bad = []\n"
        f"for name in {names!r}:\n"
        "    for m in [m for m in sys.modules if m == 'segme' or m.startswith('segme.')]:\n"
        "        del sys.modules[m]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError as e:\n"
        "        if (e.name or '').partition('.')[0] == 'segme':\n"
        "            bad.append(f'{name}: {e}')\n"  # an optional extra missing is fine
        "    except ImportError as e:\n"
        "        bad.append(f'{name}: {e}')\n"
        "print('\\n'.join(bad))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == ""
