"""Shared utilities: atomic writes and thread handling."""
import os
import stat

import pytest

from qlts.utils import atomic_write


def test_atomic_write_replaces_only_on_success_with_the_usual_mode(tmp_path):
    path = tmp_path / "f.txt"
    with atomic_write(path, "w") as fh:
        fh.write("one")
    assert path.read_text() == "one"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    with pytest.raises(RuntimeError):
        with atomic_write(path, "w") as fh:
            fh.write("two, half")
            raise RuntimeError("crash mid-write")
    assert path.read_text() == "one"
    assert os.listdir(tmp_path) == ["f.txt"]  # no temp file left behind


def test_make_windows_leaves_torch_threads_alone():
    import subprocess
    import sys

    code = ("import torch, numpy as np; torch.set_num_threads(1); from qlts.preprocessing import make_windows; "
            "make_windows(np.random.rand(500, 3).astype(np.float32), 8, 2); print(torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
