"""busi_lib.book.colab: nothing happens off Colab; on a faked Colab the right commands are run."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from busi_lib.book import colab


class Recorder:
    def __init__(self, returncode: int = 0):
        self.calls: list[list[str]] = []
        self.returncode = returncode

    def __call__(self, cmd, check=False, **kw):
        self.calls.append(list(cmd))
        if cmd[:2] == ["git", "clone"] and not self.returncode:   # what a clone leaves behind
            target = Path(cmd[-1])
            (target / "busi_lib").mkdir(parents=True)
            (target / "pyproject.toml").write_text("[project]\nname = 'busi_lib'\n")
        return types.SimpleNamespace(returncode=self.returncode)


@pytest.fixture
def off_colab(monkeypatch):
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.setattr(colab.importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("google") else
                        __import__("importlib").util.find_spec(name))


def test_off_colab_does_nothing(off_colab, monkeypatch, capsys, tmp_path):
    calls = []
    monkeypatch.setattr(colab.subprocess, "run", lambda *a, **k: calls.append(a))
    monkeypatch.chdir(tmp_path)
    assert colab.on_colab() is False
    assert colab.setup() is None
    assert calls == []
    assert capsys.readouterr().out == ""
    assert Path.cwd() == tmp_path


def test_detects_colab_from_env(monkeypatch):
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20250101")
    assert colab.on_colab() is True


def test_detects_colab_from_module(monkeypatch):
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    google = types.ModuleType("google")
    google.__path__ = []
    gc = types.ModuleType("google.colab")
    gc.__spec__ = types.SimpleNamespace(name="google.colab")
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", gc)
    monkeypatch.setattr(colab.importlib.util, "find_spec",
                        lambda name, *a: object() if name == "google.colab" else None)
    assert colab.on_colab() is True


def test_colab_clones_installs_without_deps_and_fetches(monkeypatch, tmp_path, capsys):
    """Fresh runtime: clone, `pip install --no-deps -e`, then only the missing light deps."""
    monkeypatch.setenv("COLAB_RELEASE_TAG", "fake")
    monkeypatch.delenv("BUSI_DATA", raising=False)
    monkeypatch.chdir(tmp_path)              # like /content: not inside a checkout
    clone = tmp_path / "clone"
    rec = Recorder()
    monkeypatch.setattr(colab.subprocess, "run", rec)
    monkeypatch.setattr(colab, "missing_deps", lambda deps=None: ["pooch>=1.8,<2"])
    located = []
    import busi_lib.data.busi as data

    def fake_locate(data_dir=None, **kw):
        located.append(data_dir)
        return tmp_path / "Dataset_BUSI_with_GT"

    monkeypatch.setattr(data, "locate_data", fake_locate)
    monkeypatch.setattr(sys, "path", list(sys.path))
    root = colab.setup(clone_dir=clone)
    assert root == tmp_path / "Dataset_BUSI_with_GT"
    assert located == [None]
    assert rec.calls[0][:2] == ["git", "clone"] and colab.REPO_URL in rec.calls[0]
    assert rec.calls[0][-1] == str(clone)
    pip = rec.calls[1]
    assert pip[1:4] == ["-m", "pip", "install"] and "--no-deps" in pip and "-e" in pip
    assert not any("tensorflow" in c or "keras" in c for call in rec.calls for c in call)
    assert rec.calls[2][-1] == "pooch>=1.8,<2" and "--no-deps" not in rec.calls[2]
    assert len(rec.calls) == 3
    assert Path.cwd() == clone
    import os
    assert os.environ["BUSI_DATA"] == str(tmp_path / "Dataset_BUSI_with_GT")
    monkeypatch.delenv("BUSI_DATA")


def test_colab_inside_checkout_does_not_clone(monkeypatch, tmp_path):
    monkeypatch.setenv("COLAB_RELEASE_TAG", "fake")
    proj = tmp_path / "proj"
    (proj / "busi_lib").mkdir(parents=True)
    (proj / "pyproject.toml").write_text("[project]\nname='x'\n")
    (proj / "notebooks").mkdir()
    monkeypatch.chdir(proj / "notebooks")
    rec = Recorder()
    monkeypatch.setattr(colab.subprocess, "run", rec)
    monkeypatch.setattr(colab, "missing_deps", lambda deps=None: [])
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert colab.setup(fetch_data=False) is None
    assert len(rec.calls) == 1 and "--no-deps" in rec.calls[0]
    assert rec.calls[0][-1] == str(proj)


def test_colab_command_failure_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("COLAB_RELEASE_TAG", "fake")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(colab.subprocess, "run", Recorder(returncode=128))
    with pytest.raises(RuntimeError, match="exit code 128"):
        colab.setup(clone_dir=tmp_path / "c", fetch_data=False)


def test_missing_deps_lists_only_absent_modules():
    assert colab.missing_deps({"json": "json-req", "no_such_module_xyz": "xyz>=1"}) == ["xyz>=1"]


def test_bootstrap_cell_uses_repo_url():
    assert colab.REPO_URL in colab.BOOTSTRAP and "colab.setup()" in colab.BOOTSTRAP
    compile(colab.BOOTSTRAP, "<bootstrap>", "exec")


def test_upload_images_off_colab_returns_nothing(off_colab, tmp_path):
    assert colab.upload_images(tmp_path / "up", uploader=lambda: {"a.png": b"x"}) == []
    assert not (tmp_path / "up").exists()


def test_upload_images_saves_the_files_inside_the_folder(tmp_path, capsys):
    got = colab.upload_images(tmp_path / "up", force=True,
                              uploader=lambda: {"a.png": b"123", "../../evil.png": b"4"})
    assert got == [tmp_path / "up" / "a.png", tmp_path / "up" / "evil.png"]
    assert (tmp_path / "up" / "a.png").read_bytes() == b"123"
    assert "Choose breast-ultrasound images" in capsys.readouterr().out


def test_the_repository_url_is_the_books_own():
    """The clone URL of the first cell and the book's repository button name one repository."""
    from pathlib import Path

    import yaml

    from busi_lib.book.colab import BOOTSTRAP, REPO_URL

    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "_config.yml").read_text())
    assert cfg["repository"]["url"] == REPO_URL and REPO_URL in BOOTSTRAP
    assert "path_to_book" not in cfg["repository"]        # a '.' there puts '/./' in launch links


def test_each_notebook_opens_with_its_bootstrap_cell():
    """Every chapter's first code cell is the bootstrap of colab.py; the chapters that read
    only records do not fetch BUSI on Colab."""
    import json
    from pathlib import Path

    nbs = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
    from busi_lib.book.build import NOTEBOOKS

    assert [p.stem for p in nbs] == sorted(NOTEBOOKS)
    for path in nbs:
        first = next(c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
        assert "".join(first["source"]).strip() == colab.bootstrap_cell(path.stem).strip(), path
    assert "fetch_data=False" in colab.bootstrap_cell("06_birads")
    assert "fetch_data=False" in colab.bootstrap_cell("10_peers")
    assert "fetch_data=False" not in colab.bootstrap_cell("01_eda")


def test_launch_urls_have_colabs_form_and_match_the_built_book():
    """Each chapter's launch link: Colab's GitHub form, no '/./', the repository and branch of
    _config.yml, a notebook that exists; and, when the book is built here, the very link of
    its Colab button."""
    import re
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    cfg = yaml.safe_load((root / "_config.yml").read_text())
    assert cfg["launch_buttons"]["colab_url"] == colab.COLAB_URL
    from busi_lib.book.build import NOTEBOOKS

    for chapter in NOTEBOOKS:
        url = colab.launch_url(chapter, cfg["repository"]["url"], cfg["repository"]["branch"])
        assert "/./" not in url and "//" not in url.split("://", 1)[1]
        m = re.fullmatch(r"https://colab\.research\.google\.com/github/([^/]+)/([^/]+)/blob/"
                         r"([^/]+)/(notebooks/[^/]+\.ipynb)", url)
        assert m and (root / m.group(4)).is_file(), url
        assert f"https://github.com/{m.group(1)}/{m.group(2)}" == colab.REPO_URL
        html = root / "_build" / "html" / "notebooks" / f"{chapter}.html"
        if html.is_file():
            assert url in html.read_text(), f"{html} has another Colab link"
    with pytest.raises(ValueError, match="github.com/<owner>/<name>"):
        colab.launch_url("01_eda", "https://gitlab.com/a/b")
    with pytest.raises(ValueError, match="got 'https://github.com/a'"):
        colab.launch_url("01_eda", "https://github.com/a")
