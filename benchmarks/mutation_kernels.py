"""Hand-made mutants of the numba kernels, merged into ``results/benchmarks/mutation.json``.

mutmut (``benchmarks/mutation.py``) leaves decorated functions alone, so the ``@njit`` kernels
of ``slics.core`` (``_ksvd``, ``_nnls_lh``, ``_cholesky``, ``_lasso_kernels``, ``_sparse_product``, ``pq_kernels``) get no mutant from it: it
mutates only their Python wrappers. Here each kernel gets a few single small bugs of the kinds
that mutation tools make (an operator, a bound, an index, a sign, a dropped clamp), written by
hand. Each mutant is applied to a copy of ``src/`` (one copy, restored between mutants, with its
own numba cache, so only the mutated module recompiles) and the module's tests are run against
it; a mutant is killed when they fail (or run past the time limit). The unmutated copy must pass
first. Equivalent mutants are not made (each entry says what it breaks).

Usage::

    python benchmarks/mutation_kernels.py                 # every kernel module
    python benchmarks/mutation_kernels.py pq_kernels      # some modules only
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mutation import OUT, ROOT, write_record  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

TIMEOUT_S = 900

# module -> (its tests, [(what the mutant breaks, original text, mutated text, occurrence)])
MUTANTS: dict[str, tuple[list[str], list[tuple[str, str, str, int]]]] = {
    "pq_kernels": (["tests/test_pq.py"], [
        ("8th interleaved query reads the 7th table slot", "a7 += r[7]", "a7 += r[6]", 0),
        ("5th query of a block not written", "if qn > 4:", "if qn > 5:", 0),
        ("last partial block of candidates dropped", "ncb = (n + CANDIDATE_BLOCK - 1) // CANDIDATE_BLOCK",
         "ncb = n // CANDIDATE_BLOCK", 0),
        ("table entry skips dimension 1", "for i in range(1, d):", "for i in range(2, d):", 0),
        ("gathered tables: last candidate of each block skipped", "min(n, c0 + CANDIDATE_BLOCK))",
         "min(n, c0 + CANDIDATE_BLOCK - 1))", 1),
    ]),
    "_nnls_lh": (["tests/test_nnls_lh.py", "tests/test_nnls.py"], [
        ("starting point not projected on the orthant (negative cold or warm starts kept)",
         "        else:\n            x[a] = 0.0\n    factored", "        else:\n            x[a] = x[a]\n    factored", 0),
        ("step length takes the largest ratio", "if t < step:", "if t > step:", 0),
        ("gradient sign flipped", "acc = -b[c]", "acc = b[c]", 0),
    ]),
    "_cholesky": (["tests/test_cholesky_update.py", "tests/test_nnls_lh.py"], [
        ("Givens downdate: wrong sign", "L[q, i + 1] = -sn * u + cs * v", "L[q, i + 1] = sn * u + cs * v", 0),
        ("relative singularity threshold dropped", "if acc <= PIVOT * Gs[ja, ja] or acc <= 0.0:",
         "if acc <= 0.0:", 0),
        ("back-substitution skips a term", "for t in range(a + 1, np_):", "for t in range(a + 2, np_):", 0),
        ("removal shifts one column short", "for t in range(i + 2):", "for t in range(i + 1):", 0),
        ("LAPACK factor accepts a tiny pivot", "if not F[j, j] * F[j, j] > pivot * M[j, j]:",
         "if not F[j, j] * F[j, j] > 0.0:", 0),
    ]),
    "_sparse_product": (["tests/test_sparse_product.py", "tests/test_sparse_coding.py"], [
        ("a row without non-zeros is not cleared", "                o[c] = 0\n", "                pass\n", 0),
        ("the first non-zero is added to what the row held", "                        o[c] = wj * g[c]",
         "                        o[c] += wj * g[c]", 0),
        ("the last atom never read", "for j in range(m):", "for j in range(m - 1):", 0),
        ("the step's threshold clamps from one side only", "v = v - min(max(v, -thr), thr)",
         "v = v - min(v, thr)", 0),
        ("the gradient step adds where it subtracts", "neg = -two_step", "neg = two_step", 0),
        ("the count of non-zeros includes zeros", "if v != 0:", "if v >= 0:", 0),
    ]),
    "_lasso_kernels": (["tests/test_lasso.py", "tests/test_gram_rows.py"], [
        ("a round that needs absent rows of G does not stop for them", "if slot[ws[t]] < 0:",
         "if slot[ws[t]] < -1:", 0),
        ("a resumed row restarts its sweep count", "    sweeps = state[0]", "    sweeps = 0", 0),
        ("dual scaling off by a factor 2", "if 2.0 * qmax > lam:", "if qmax > lam:", 0),
        ("residual norm with the wrong sign of w'q", "rr = xx - wb - wq", "rr = xx - wb + wq", 0),
        ("support solve keeps the worse candidate", "if p2 < best_p:", "if p2 > best_p:", 0),
        ("support solve's right-hand side: the sign term of a negative coefficient",
         "rhs[a] = bw[a] - (half if ww[a] > 0.0 else -half)", "rhs[a] = bw[a] - (half if ww[a] > 0.0 else half)", 0),
        ("a factor carried to a new round keeps its atoms' old positions", "FS[t] = pos[FA[t]]", "FS[t] = FA[t] % k", 0),
        ("a reduction of a support beyond the rank takes only the null directions rounding left below its threshold",
         "r = max(r, s - rank)", "r = r", 0),
        ("the eigen-solve divides by the null eigenvalues that rounding lifted", "if t >= null and evals[t] > cut:",
         "if evals[t] > cut:", 0),
    ]),
    "_ksvd": (["tests/test_dictionary.py"], [
        ("old residual norm: a cross product", "a0 += e0 * e0", "a0 += e0 * e1", 0),
        ("rows' tail (d % 4) updated with the wrong sign", "r[l] = e[l] + ci * dv[l]", "r[l] = e[l] - ci * dv[l]", 0),
        ("write-back adds the atom", "Ej[r, l] = Ri[l] - ki * atom[l]", "Ej[r, l] = Ri[l] + ki * atom[l]", 0),
        ("covariance drops block 0", "for b in range(nb):\n        y += P[b]", "for b in range(1, nb):\n        y += P[b]", 0),
        ("row copy reads the destination's row numbers", "dst[dst_rows[t]] = src[src_rows[t]]",
         "dst[dst_rows[t]] = src[dst_rows[t]]", 1),
    ]),
}


def _replace_nth(text: str, old: str, new: str, n: int) -> str:
    start = -1
    for _ in range(n + 1):
        start = text.find(old, start + 1)
        if start < 0:
            raise ValueError(f"mutant text {old!r} (occurrence {n}) not found; update MUTANTS")
    return text[:start] + new + text[start + len(old):]


def _run_tests(copy: Path, tests: list[str]) -> tuple[int, float]:
    env = {**os.environ, "PYTHONPATH": str(copy / "src"), "NUMBA_CACHE_DIR": str(copy / "numba-cache")}
    start = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "pytest", *tests, "-x", "-q", "-p", "no:cacheprovider"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        code = -9
    return code, time.perf_counter() - start


def run_module(module: str, copy: Path) -> dict:
    tests, mutants = MUTANTS[module]
    path = copy / "src" / "slics" / "core" / f"{module}.py"
    original = path.read_text()
    code, seconds = _run_tests(copy, tests)
    if code != 0:
        raise RuntimeError(f"{module}: the tests fail on the unmutated copy (exit {code}); nothing recorded")
    results = []
    for what, old, new, n in mutants:
        path.write_text(_replace_nth(original, old, new, n))
        try:
            code, seconds = _run_tests(copy, tests)
        finally:
            path.write_text(original)
        outcome = "killed" if code in (1, 3) else "timeout" if code == -9 else "survived" if code == 0 else f"exit {code}"
        results.append({"mutant": what, "from": old, "to": new, "outcome": outcome, "seconds": round(seconds, 1)})
        print(f"{module}: {outcome:8s} {what} ({seconds:.0f} s)", flush=True)
    killed = sum(r["outcome"] in ("killed", "timeout") for r in results)
    return {"mutants": results, "score": killed / len(results),
            "survivors": [r["mutant"] for r in results if r["outcome"] == "survived"]}


def main(argv: list[str]) -> int:
    modules = argv or list(MUTANTS)
    unknown = sorted(set(modules) - set(MUTANTS))
    if unknown:
        print(f"error: no hand-made mutants for {unknown}; choose among {sorted(MUTANTS)}", file=sys.stderr)
        return 2
    record = json.loads(OUT.read_text()) if OUT.exists() else {"modules": {}}
    kernels = record.setdefault("kernels", {})
    with tempfile.TemporaryDirectory(prefix="slics-kernel-mutants-") as folder:
        copy = Path(folder)
        shutil.copytree(ROOT / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        for module in modules:                     # recorded module by module (minutes each)
            kernels[f"slics.core.{module}"] = run_module(module, copy)
            killed = sum(len(m["mutants"]) - len(m["survivors"]) for m in kernels.values())
            total = sum(len(m["mutants"]) for m in kernels.values())
            record["kernels_total"] = {"killed": killed, "mutants": total, "score": killed / total,
                                       "note": "hand-made mutants of the @njit kernels (benchmarks/mutation_kernels.py)"}
            write_record({**json.loads(OUT.read_text()), "kernels": kernels, "kernels_total": record["kernels_total"]}
                         if OUT.exists() else record)
            print(f"kernels so far: {killed} of {total} killed -> {OUT.relative_to(ROOT)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
