"""`make diagram`: one picture per environment (SVG and PNG), drawn from the synthesized stacks with AWS icons.

    python -m preview.diagram [--synth-dir cdktf.out] [--out docs/diagrams]

Reads `cdktf.out/` (run `make synth` first; the make target does), builds each environment's architecture
(preview/architecture.py) and the pipeline's, and draws them with `diagrams` (Graphviz's `dot` renders). Prints
the paths it wrote.
"""

from __future__ import annotations

import argparse
import base64
import re
import shutil
import sys
from pathlib import Path

from configuration import ConfigError, load_config
from preview.architecture import Architecture, environment, environments_of, pipeline
from preview.synthesized import SynthesisMissing, Synthesized

# Kind -> (module, class) of the icon; imported only when drawing.
ICONS = {
    "vpc": ("diagrams.aws.network", "VPC"),
    "public-subnet": ("diagrams.aws.network", "PublicSubnet"),
    "private-subnet": ("diagrams.aws.network", "PrivateSubnet"),
    "nat": ("diagrams.aws.network", "NATGateway"),
    "load-balancer": ("diagrams.aws.network", "ElbApplicationLoadBalancer"),
    "network-load-balancer": ("diagrams.aws.network", "ElbNetworkLoadBalancer"),
    "endpoint-service": ("diagrams.aws.network", "Privatelink"),
    "listener": ("diagrams.aws.network", "ElasticLoadBalancing"),
    "rule": ("diagrams.aws.network", "ElasticLoadBalancing"),
    "target-group": ("diagrams.aws.network", "ElasticLoadBalancing"),
    "namespace": ("diagrams.aws.network", "CloudMap"),
    "service": ("diagrams.aws.compute", "ElasticContainerServiceService"),
    "task": ("diagrams.aws.compute", "ElasticContainerServiceTask"),
    "file-system": ("diagrams.aws.storage", "ElasticFileSystemEFSFileSystem"),
    "access-point": ("diagrams.aws.storage", "EFS"),
    "bucket": ("diagrams.aws.storage", "SimpleStorageServiceS3Bucket"),
    "trigger": ("diagrams.aws.integration", "EventbridgeRule"),
    "topic": ("diagrams.aws.integration", "SimpleNotificationServiceSnsTopic"),
    "queue": ("diagrams.aws.integration", "SimpleQueueServiceSqsQueue"),
    "stage": ("diagrams.aws.devtools", "Codepipeline"),
    "project": ("diagrams.aws.devtools", "Codebuild"),
}


def _icon(kind: str) -> type:
    import importlib

    module, name = ICONS[kind]
    return getattr(importlib.import_module(module), name)


def draw(arch: Architecture, delivery: Architecture, path: Path) -> list[Path]:
    """The environment with the pipeline beside it; the stage that deploys it points at its load balancer."""
    from diagrams import Cluster, Diagram, Edge

    drawn: dict[str, object] = {}
    groups = sorted({node.group for node in arch.nodes.values()})
    with Diagram(f"{arch.name}", filename=str(path), outformat=["svg", "png"], show=False, direction="LR",
                 graph_attr={"fontsize": "20", "pad": "0.4", "nodesep": "0.35", "ranksep": "1.1"}):
        for group in groups:
            members = [node for node in arch.nodes.values() if node.group == group]
            if group:
                with Cluster(group):
                    for node in members:
                        drawn[node.id] = _icon(node.kind)(node.label)
            else:
                for node in members:
                    drawn[node.id] = _icon(node.kind)(node.label)
        with Cluster("pipeline"):
            for node in delivery.nodes.values():
                drawn[node.id] = _icon(node.kind)(node.label)
        for graph in (arch, delivery):
            for edge in graph.edges:
                drawn[edge.source] >> Edge(label=edge.label) >> drawn[edge.target]  # type: ignore[operator]
        balancers = arch.of_kind("load-balancer")
        for node in delivery.of_kind("project"):
            if node.label.endswith(f"-deploy-{arch.name} -> {arch.name}") and balancers:
                drawn[node.id] >> Edge(label="cdktf deploy", style="dashed") >> drawn[balancers[0].id]  # type: ignore[operator]
    _embed_icons(path.with_suffix(".svg"))
    return [path.with_suffix(".svg"), path.with_suffix(".png")]


def _embed_icons(svg: Path) -> None:
    """Graphviz links each icon by its path in the installed package: inline them, so the SVG opens anywhere."""
    def inline(match: re.Match[str]) -> str:
        icon = Path(match.group(1))
        return f'xlink:href="data:image/png;base64,{base64.b64encode(icon.read_bytes()).decode()}"'

    svg.write_text(re.sub(r'xlink:href="(/[^"]+\.png)"', inline, svg.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m preview.diagram", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synth-dir", type=Path, default=Path("cdktf.out"))
    parser.add_argument("--out", type=Path, default=Path("docs/diagrams"))
    args = parser.parse_args(argv)
    if shutil.which("dot") is None:
        print("error: Graphviz's `dot` is missing: apt-get install graphviz (make diagram installs it)",
              file=sys.stderr)
        return 2
    try:
        config = load_config()
        synth = Synthesized.read(args.synth_dir)
    except ConfigError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return 2
    except SynthesisMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    delivery = pipeline(synth, config.project)
    for name in environments_of(synth, config.project):
        for written in draw(environment(synth, config.project, name), delivery, args.out / name):
            print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
