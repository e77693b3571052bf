"""Command-line errors: one line, exit status 2, no traceback; the params checks that catch them early."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from slics.utils import schema
from slics.utils.config import ConfigError, load_params, load_yaml, project_root
from slics.utils.errors import EXIT_ERROR, run_main
from slics.utils.io import atomic_dir, remove_stale


def _cli(*args, env=None):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=project_root(),
                          env={**os.environ, **(env or {})})


def _params_file(tmp_path, edit=None, text=None):
    path = tmp_path / "params.yaml"
    body = (project_root() / "params.yaml").read_text() if text is None else text
    path.write_text(edit(body) if edit else body)
    return path


@pytest.mark.parametrize("edit, words", [
    (lambda s: s.replace("seed: 0", "seed: -1", 1), "seed = -1: must be >= 0"),
    (lambda s: s.replace('prompt_template: "a photo of a {}"', 'prompt_template: "a photo of a {} {x"'),
     "embed.prompt_template = 'a photo of a {} {x': is not a valid template"),
    (lambda s: s.replace("step: 0.0001}", "step: 1.0e-9}"), "robustness.grid.step: = 1e-09 makes a grid of 9e+09"),
    (lambda s: s + "seed: 3\n", "found the key 'seed' twice"),
    (lambda s: s + "  bad: [1\n", "is not valid YAML"),
])
def test_schema_command_prints_one_clear_error(tmp_path, edit, words):
    proc = _cli("-m", "slics.utils.schema", str(_params_file(tmp_path, edit)))
    assert proc.returncode == EXIT_ERROR
    assert words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    debug = _cli("-m", "slics.utils.schema", str(_params_file(tmp_path, edit)), "--debug")
    assert "Traceback" in debug.stderr                                  # asked for


def test_schema_command_on_a_valid_and_a_missing_file(tmp_path):
    ok = _cli("-m", "slics.utils.schema")
    assert ok.returncode == 0 and "valid" in ok.stdout
    missing = _cli("-m", "slics.utils.schema", str(tmp_path / "nope.yaml"))
    assert missing.returncode == EXIT_ERROR and "nope.yaml does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_stage_commands_share_the_error_path(tmp_path):
    bad = _params_file(tmp_path, lambda s: s.replace("seed: 0", "seed: 1.5", 1))
    proc = _cli("-m", "slics.embedding.embed", "cifar10", "--params", str(bad))
    assert proc.returncode == EXIT_ERROR and "seed = 1.5: must be an integer" in proc.stderr
    assert "Traceback" not in proc.stderr
    check = _cli("-m", "slics.utils.pipeline", "deps", "--check")
    assert check.returncode == 0 and "up to date" in check.stdout


def test_load_params_rejects_duplicates_and_non_mappings(tmp_path):
    with pytest.raises(ConfigError, match="found the key 'seed' twice"):
        load_params(_params_file(tmp_path, text="seed: 1\nseed: 2\n"))
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_params(_params_file(tmp_path, text="- 1\n- 2\n"))
    with pytest.raises(FileNotFoundError, match="a folder"):
        load_yaml(tmp_path)


def test_run_main_turns_expected_errors_into_status_2(capsys):
    def boom(argv):
        raise OSError(28, "No space left on device", "/x/y.csv")

    assert run_main(boom, [], prog="t") == EXIT_ERROR
    err = capsys.readouterr().err
    assert "t: error: [Errno 28] No space left on device: '/x/y.csv'" in err
    assert run_main(lambda argv: (_ for _ in ()).throw(KeyboardInterrupt()), [], prog="t") == 130
    with pytest.raises(ZeroDivisionError):                  # a bug is not an expected error: traceback
        run_main(lambda argv: 1 / 0, [], prog="t")


def test_atomic_dir_publishes_usual_modes_and_removes_leftovers(tmp_path):
    dest = tmp_path / "emb"
    (tmp_path / ".emb.staging-dead").mkdir()                 # a killed writer's
    with atomic_dir(dest) as staging:
        (staging / "a.npy").write_bytes(b"x")
    mode = stat.S_IMODE(dest.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o777 & ~umask
    assert not (tmp_path / ".emb.staging-dead").exists()
    assert remove_stale(tmp_path, ".nothing-*") == []
