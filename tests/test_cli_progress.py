import sys
from cfglab.cli._common import progress_bar

def test_progress_bar_draws_on_stderr_only(capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    with progress_bar("work") as update:
        for i in range(3):
            update(i + 1, 3)
    out, err = capsys.readouterr()
    assert out == ""  # stdout stays clean for --json
    assert "work" in err
