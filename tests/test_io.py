"""The one atomic-write helper: all or nothing, format-preserving names, one-line errors."""

import json

import pytest

from cfglab._io import atomic_path, write_atomic, write_json_atomic
from cfglab._validate import CfglabInputError


def test_json_is_written_whole_with_nan_as_null(tmp_path):
    path = write_json_atomic(tmp_path / "sub" / "r.json", {"a": float("nan"), "b": [1.5, float("inf")]})
    assert json.loads(path.read_text()) == {"a": None, "b": [1.5, None]}
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.json"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old")

    def boom(tmp):
        open(tmp, "w").write("partial")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_atomic(path, boom)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_temp_name_keeps_the_suffix_and_folders_replace_whole(tmp_path):
    with atomic_path(tmp_path / "fig.png") as tmp:
        assert tmp.name.endswith(".png") and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    folder = tmp_path / "ckpt"
    with atomic_path(folder, directory=True) as tmp:
        (tmp / "a").write_text("1")
        assert not folder.exists()
    assert (folder / "a").read_text() == "1"


def test_unwritable_path_is_a_one_line_input_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(CfglabInputError, match="cannot write"):
        write_json_atomic(tmp_path / "file" / "r.json", {})


def test_figures_are_written_atomically_and_closed(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cfglab._io import save_figure_atomic

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = save_figure_atomic(fig, tmp_path / "sub" / "f.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # a whole PNG under the final name
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.png"]  # no temporary left
    assert not plt.fignum_exists(fig.number)  # closed: a long sweep does not leak figures
    fig2, _ = plt.subplots()
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(CfglabInputError, match="dir.png"):
        save_figure_atomic(fig2, tmp_path / "dir.png")  # a folder in the way: one line, figure closed
    assert not plt.fignum_exists(fig2.number)
