"""``slics.utils.jit``: the warm-up that ``make`` runs after installing covers every cached kernel."""

import ast
import subprocess
import sys
from pathlib import Path

import slics


def _cached_kernel_modules() -> set[str]:
    """Modules of the package that define a numba function with ``cache=True``."""
    root = Path(slics.__file__).parent
    found = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and any(
                    isinstance(dec, ast.Call) and any(k.arg == "cache" and getattr(k.value, "value", None) is True
                                                      for k in dec.keywords) for dec in node.decorator_list):
                found.add(".".join(("slics", *path.relative_to(root).with_suffix("").parts)))
    return found


def test_every_share_runs_and_the_shares_reach_every_cached_kernel_module():
    """Each share runs (in a fresh process, as ``make`` runs them) and, together, they import every
    module with a cached kernel: a new kernel module without a share would compile inside a stage."""
    wanted = _cached_kernel_modules()
    assert {"slics.core._lasso_kernels", "slics.core._ksvd", "slics.core._nnls_lh", "slics.core.pq_kernels",
                      "slics.core._sparse_product"} <= wanted
    code = ("import sys; from slics.utils.jit import SHARES\n"
            "for share in SHARES.values(): share()\n"
            "print(' '.join(m for m in sys.modules if m.startswith('slics.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert wanted <= set(done.stdout.split())
