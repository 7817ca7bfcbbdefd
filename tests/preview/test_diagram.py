"""The drawing step's own logic (Graphviz itself is not needed here): the SVG's icons are inlined, and without
synthesized stacks or `dot` the command ends with one clear line."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest

from preview import diagram
from preview.architecture import environment, environments_of, pipeline
from preview.synthesized import Synthesized


def test_icons_linked_by_path_are_inlined(tmp_path: Path):
    icon = tmp_path / "vpc.png"
    icon.write_bytes(b"\x89PNG fake")
    svg = tmp_path / "staging.svg"
    svg.write_text(f'<svg><image xlink:href="{icon}" width="1"/><image xlink:href="{icon}"/></svg>')
    diagram._embed_icons(svg)
    inlined = f'xlink:href="data:image/png;base64,{base64.b64encode(icon.read_bytes()).decode()}"'
    assert svg.read_text() == f'<svg><image {inlined} width="1"/><image {inlined}/></svg>'


def test_without_synthesized_stacks_the_command_says_what_to_run(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/dot")
    assert diagram.main(["--synth-dir", str(tmp_path / "none"), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: no synthesized stacks in {tmp_path / 'none'} (no manifest.json): run `make synth` first")


def test_without_graphviz_the_command_says_how_to_install_it(capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert diagram.main([]) == 2
    assert "apt-get install graphviz" in capsys.readouterr().err


@pytest.mark.parametrize("fixture, project", [("default_synth", "mlops"), ("options_synth", "acme-ml")])
def test_every_kind_the_architecture_uses_has_an_icon(request, fixture, project):
    from diagrams import Node

    synth = Synthesized.read(request.getfixturevalue(fixture).outdir)
    kinds = {node.kind for name in environments_of(synth, project)
             for node in environment(synth, project, name).nodes.values()}
    kinds |= {node.kind for node in pipeline(synth, project).nodes.values()}
    assert kinds <= set(diagram.ICONS)
    assert all(issubclass(diagram._icon(kind), Node) for kind in kinds)
