"""Build the compendium's offline HTML site from the committed results (``make site``).

``python -m slics.site [--out site]`` writes, from ``results/`` as committed:

- ``index.html``: the headline results (:mod:`slics.site.headline`: the papers' values beside
  this run's, the claims that hold and those that do not), links to every notebook, and the
  reproduction contract (the README's section of that name);
- ``notebooks/<name>.html``: every executed notebook under ``results/notebooks/``;
- ``benchmarks.html``: ``docs/benchmarks.md``;
- ``data.html``: ``data/README.md`` and every resource of ``src/slics/data/resources.yaml``.

Tool: nbconvert's ``basic`` template (the notebook body only: no require.js, no CDN MathJax)
inside a small Jinja page template, because nbconvert and Jinja are already installed (the
notebooks are executed by papermill, which needs them), the pages are the notebooks exactly as
committed, and the whole build takes seconds; Jupyter Book or Sphinx with myst-nb would add a
Sphinx build and a theme's assets for the same pages. Every script, style and font is local: the site's CSS (system fonts), Pygments' CSS,
and MathJax 3 (``docs/vendor/mathjax``, Apache-2.0) for the notebooks' formulas.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import jinja2
import mistune
import nbformat
import yaml
from nbconvert import HTMLExporter
from pygments.formatters import HtmlFormatter

from ..utils.config import load_params, project_root, upstream_results_dir
from ..utils.io import atomic_dir
from .headline import EQUAL_TOLERANCE, headlines

HERE = Path(__file__).resolve().parent
MATHJAX = ("docs", "vendor", "mathjax")
CONTRACT_HEADING = "## Reproduction contract"


@dataclass
class NotebookPage:
    name: str    # file stem, e.g. 03_slics_clip
    title: str   # the notebook's first heading
    label: str   # short name for the navigation bar


def render_markdown(text: str, pages: set[str] = frozenset()) -> str:
    """Markdown to HTML; links to repository files that are not site pages become plain text."""
    body = mistune.create_markdown(plugins=["table"], escape=False)(text)
    return _unlink(body, pages)


def _unlink(body: str, pages: set[str]) -> str:
    def keep(match: re.Match[str]) -> str:
        href = html.unescape(match.group(1))
        local = not re.match(r"^[a-z][a-z0-9+.-]*:", href) and not href.startswith("#")
        return match.group(2) if local and href.split("#")[0] not in pages else match.group(0)

    return re.sub(r'<a href="([^"]*)"[^>]*>(.*?)</a>', keep, body, flags=re.S)


def readme_section(readme: str, heading: str) -> str:
    """The text under ``heading`` (a ``## `` line) in ``readme``, up to the next ``## `` heading."""
    if heading not in readme:
        raise ValueError(f"README.md has no {heading!r} section; the site's front page shows it.")
    rest = readme.split(heading, 1)[1]
    return rest.split("\n## ", 1)[0].strip()


def notebook_pages(results: Path) -> list[NotebookPage]:
    pages = []
    for path in sorted((results / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        heading = next((line.lstrip("# ").strip() for c in nb.cells if c.cell_type == "markdown"
                        for line in c.source.splitlines() if line.startswith("# ")), path.stem)
        pages.append(NotebookPage(path.stem, heading, path.stem.split("_", 1)[0] + " " + path.stem.split("_", 1)[-1]
                                  .replace("_", " ")))
    if not pages:
        raise FileNotFoundError(f"{results / 'notebooks'} holds no executed notebook; run `dvc repro` first.")
    return pages


def resources_table(path: Path) -> str:
    """``resources.yaml`` as one HTML table: resource, description, licence, files (URL, sha256)."""
    registry = yaml.safe_load(path.read_text(encoding="utf-8"))
    rows = []
    for name, entry in registry.items():
        files = "".join(
            f"<li><code>{html.escape(str(f.get('mirror', '')))}</code> from <code>{html.escape(str(f.get('url', '')))}</code>"
            f", sha256 <code>{html.escape(str(f.get('sha256') or 'not pinned'))[:16]}</code></li>"
            for f in entry.get("files", []))
        rows.append(f"<tr><td><code>{html.escape(name)}</code></td><td>{html.escape(str(entry.get('description', '')))}</td>"
                    f"<td>{html.escape(str(entry.get('licence', '')))}</td><td><ul>{files}</ul></td></tr>")
    return ("<table><thead><tr><th>resource</th><th>description</th><th>licence</th><th>files</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


# Written into every site: a folder holding it (or an earlier site's index.html and stylesheet) may be
# replaced whole; any other non-empty folder is someone's files and is refused.
SITE_MARKER = ".slics-site"


def check_site_folder(out: Path) -> None:
    """Refuse an ``out`` that a rebuild would destroy: a file, or a non-empty folder that is not a site."""
    if out.is_file() or out.is_symlink() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; the site is a folder (it would replace the file): choose "
                         f"another path.")
    if out.is_dir() and any(out.iterdir()) and not (
            (out / SITE_MARKER).is_file() or ((out / "index.html").is_file() and (out / "static" / "site.css").is_file())):
        raise ValueError(f"--out {out} is a folder that holds other files and is not a site built here; the site "
                         f"replaces its folder whole, so choose a new or empty folder (nothing was changed).")


def build(out: Path, results: Path | None = None) -> list[Path]:
    """Write the site into ``out`` (replaced whole, atomically); return the HTML pages written.

    ``out`` must be absent, empty, or an earlier site (:func:`check_site_folder`): a folder of other
    files is refused before anything is written.
    """
    out = Path(out)
    check_site_folder(out)
    root = project_root()
    results = results or upstream_results_dir()
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=False,
                             undefined=jinja2.StrictUndefined)
    nb_pages = notebook_pages(results)
    site_pages = {"index.html", "benchmarks.html", "data.html"} | {f"notebooks/{p.name}.html" for p in nb_pages}
    common = {"notebooks": nb_pages}
    exporter = HTMLExporter(template_name="basic")
    with atomic_dir(out) as staging:
        staging.chmod(0o755)  # mkdtemp's 0700 would hide the site from a web server
        (staging / SITE_MARKER).write_text("built by python -m slics.site; this folder is replaced whole on rebuild\n")
        (staging / "notebooks").mkdir()
        (staging / "static").mkdir()
        shutil.copy2(HERE / "static" / "site.css", staging / "static" / "site.css")
        (staging / "static" / "pygments.css").write_text(HtmlFormatter(style="default").get_style_defs(".highlight"))
        shutil.copytree(root.joinpath(*MATHJAX), staging / "vendor" / "mathjax")
        for page in nb_pages:
            body, _ = exporter.from_notebook_node(nbformat.read(results / "notebooks" / f"{page.name}.ipynb", as_version=4))
            text = env.get_template("notebook.html.j2").render(
                **common, root="../", title=page.title, math=True, name=page.name,
                body=_unlink(body, {p.split("/", 1)[-1] for p in site_pages if p.startswith("notebooks/")}))
            (staging / "notebooks" / f"{page.name}.html").write_text(text, encoding="utf-8")
        profile = load_params().get("profile", "demo")
        readme = (root / "README.md").read_text(encoding="utf-8")
        index = env.get_template("index.html.j2").render(
            **common, root="", title="Headline results", math=False, headlines=headlines(results),
            profile_note=(f"Results of the committed run, profile '{profile}'. In the demo profile the images are "
                          "simulated from their real labels (see the README's Profiles): compare directions of "
                          "effects with the papers, not absolute values."),
            rules=render_markdown(
                "The SLiCS paper's claims are judged by its ledger (`reference/claims.yaml`, every claim's "
                "sentence, place, test and verdict in `results/tables/claims.md`). Report 1: a closed form holds "
                f"when the numerical optimum agrees within {EQUAL_TOLERANCE:g}. Absolute values are shown, not "
                "judged."),
            contract=render_markdown(readme_section(readme, CONTRACT_HEADING), site_pages))
        (staging / "index.html").write_text(index, encoding="utf-8")
        pages = {
            "benchmarks.html": ("Benchmarks", render_markdown(
                (root / "docs" / "benchmarks.md").read_text(encoding="utf-8"), site_pages)),
            "data.html": ("Data provenance", render_markdown(
                (root / "data" / "README.md").read_text(encoding="utf-8").replace("# data/", "# Data provenance: data/", 1),
                site_pages) + "<h2>External resources (<code>src/slics/data/resources.yaml</code>)</h2>"
                + resources_table(root / "src" / "slics" / "data" / "resources.yaml")),
        }
        for name, (title, body) in pages.items():
            (staging / name).write_text(env.get_template("page.html.j2").render(
                **common, root="", title=title, math=False, body=body), encoding="utf-8")
    return sorted(out / p for p in site_pages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="site", help="output folder (replaced whole; default: site/)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    pages = build(Path(args.out).resolve())        # errors: one line and exit 2 (slics.utils.errors.run_main)
    print(f"wrote {len(pages)} pages under {args.out}/ in {time.monotonic() - started:.0f} s; "
          f"open {Path(args.out) / 'index.html'} in a browser")
    return 0


if __name__ == "__main__":
    from ..utils.errors import run_main

    sys.exit(run_main(main))
