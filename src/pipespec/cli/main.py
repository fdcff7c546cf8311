"""The ``pipespec`` command. Each subcommand parses, calls the library, renders the result.

Exit codes: 0 success; 1 unexpected error; 2 bad config, pipeline or usage; 3 stale
generated files (``compose --check``); 4 bad data; 5 a stage failed; 6 DVC or git failed;
7 bad bundle (missing, tampered, incompatible); 8 drift beyond a monitor threshold;
9 the registry refused a release or promotion (no tag was created); 10 a
behaviour check failed (``pipespec test``, the behavior stage); 11 an output cannot be
written (read-only, immutable, a file where a folder must be).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipespec import __version__
from pipespec.cli import production, registry, shadow
from pipespec.core.console import error
from pipespec.core.errors import PipespecError

EPILOG = """\
exit codes: 0 ok, 2 bad config/pipeline/usage, 3 stale params.yaml/dvc.yaml,
            4 bad data, 5 stage failed, 6 dvc/git failed, 7 bad bundle, 8 drift,
            9 release/promotion refused, 10 behaviour check failed,
            11 output not writable, 1 anything else

Overrides use Hydra's grammar: key=value, group=option, +new_key=value, ~key.
Examples:
  pipespec run                                  # compose, compile, dvc repro
  pipespec run model.num_leaves=63 env=prod     # change a key and a group
  pipespec run dataset=csv dataset.path=data.csv dataset.target=y dataset.task=binary
  pipespec show model=lightgbm_small            # print the composition, write nothing
  pipespec compose --check                      # CI: are params.yaml and dvc.yaml fresh?
  pipespec diff HEAD~1 HEAD --md                # a PR comment: params, metrics, re-runs
  pipespec export github-actions                # CI workflow; `export --check` finds stale exports
  pipespec run -m model.num_leaves=15,31,63 -j 2  # a sweep, each run a DVC experiment
  pipespec run hparams_search=lightgbm_tpe      # an Optuna search
"""


def _overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="OVERRIDE",
        help="Hydra overrides: key=value, group=option, +key=value, ~key",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipespec",
        description="Declarative pipelines for tabular ML: configs/ (Hydra) -> params.yaml, "
        "pipelines/ -> dvc.yaml, `dvc repro` runs them.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pipespec {__version__}")
    parser.add_argument(
        "-C",
        "--project",
        metavar="DIR",
        default=None,
        help="project folder (default: the one containing the working directory)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "run",
        help="compose + compile + dvc repro, with a summary",
        description="Write params.yaml and dvc.yaml from configs/ and pipelines/ "
        "with the overrides, then `dvc repro`: only stages whose params, code or "
        "inputs changed run. Ends with the stages run/skipped and the metrics.",
    )
    _overrides(p)
    p.add_argument("-f", "--force", action="store_true", help="re-run every stage (dvc repro -f)")
    p.add_argument(
        "-m", "--multirun", action="store_true",
        help="sweep: run every combination (a,b  range()  choice()  glob()  +key) as a named "
        "DVC experiment; the workspace is left as it was",
    )  # fmt: skip
    p.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="with -m: experiments run in parallel (DVC queue workers)")  # fmt: skip

    p = sub.add_parser(
        "exp",
        help="compare experiments, or adopt one",
        description="`exp show`: the baseline and its DVC experiments, with the params that "
        "differ and the metrics. `exp apply NAME`: bring an experiment's params.yaml (and "
        "results) into the workspace; commit it to make it the new baseline.",
    )
    exp = p.add_subparsers(dest="exp_command", metavar="ACTION", required=True)
    q = exp.add_parser("show", help="table of experiments: differing params and metrics")
    q.add_argument("--sort", metavar="METRIC", help="sort by this metric (best first)")
    q.add_argument("--metrics", metavar="KEYS", help="comma-separated metric keys to show")
    q.add_argument("--md", action="store_true", help="print Markdown")
    q = exp.add_parser("apply", help="bring an experiment into the workspace")
    q.add_argument("name", help="experiment name (see `pipespec exp show`)")

    p = sub.add_parser(
        "compose",
        help="write params.yaml and dvc.yaml (or --check them)",
        description="Compose configs/ with the overrides into params.yaml (fully "
        "resolved, overrides recorded in its header) and compile pipelines/ into "
        "dvc.yaml. With --check, write nothing and exit 3 if either is stale.",
    )
    _overrides(p)
    p.add_argument(
        "--check",
        action="store_true",
        help="exit 3 naming the stale file when params.yaml or dvc.yaml would change",
    )
    p.add_argument("--stamp", metavar="PATH", help=argparse.SUPPRESS)

    p = sub.add_parser(
        "show",
        help="print the composition as YAML; write nothing",
        description="Print what `pipespec compose` would write to params.yaml.",
    )
    _overrides(p)

    sub.add_parser(
        "dag",
        help="draw the pipeline as a tree",
        description="Draw pipelines/ as a tree: each stage, its kind, the params it "
        "reads and the files it writes.",
    )

    p = sub.add_parser(
        "stage",
        help="run one stage from params.yaml (what dvc.yaml calls)",
        description="Run one stage with the params in params.yaml. DVC calls this; "
        "run it by hand to debug a stage.",
    )
    p.add_argument("name", help="stage name from pipelines/")

    p = sub.add_parser(
        "push-run-cache",
        help="push DVC's run cache with every object it names (exported tasks run this)",
        description="`dvc push --run-cache` pushes the run-cache entries but not the copies of "
        "`cache: false` outputs (metrics, plots) they name; this pushes both, so a task in "
        "another checkout restores the stage from the remote (`dvc repro --pull`).",
    )
    p.add_argument("-r", "--remote", default=None, help="DVC remote (default: the default)")

    p = sub.add_parser(
        "diff",
        help="params, metrics and re-run stages between two git revisions",
        description="Compare two git revisions (default: HEAD against the workspace): the "
        "params that changed (old, new), the metrics (old, new, delta, better or worse) and the "
        "stages the change re-runs. --md prints Markdown for a pull-request comment.",
    )
    p.add_argument("a_rev", nargs="?", default="HEAD", metavar="REV_A", help="default: HEAD")
    p.add_argument(
        "b_rev", nargs="?", default="workspace", metavar="REV_B", help="default: the workspace"
    )
    p.add_argument("--md", action="store_true", help="print Markdown instead of tables")

    p = sub.add_parser(
        "init",
        help="create a new project",
        description="Scaffold a project in DIR: git init, dvc init, configs/, "
        "pipelines/, params.yaml, dvc.yaml and .gitignore; `pipespec run` runs it "
        "at once on the embedded example data.",
    )
    p.add_argument("dir", help="folder to create (or complete)")
    p = sub.add_parser(
        "export",
        help="write CI, Airflow, Docker, Kubernetes or alert files (or --check them)",
        description="Generate files for systems that run the pipeline or its model elsewhere, "
        "from params.yaml, pipelines/ and (docker, alerts) the bundle: github-actions "
        "(.github/workflows/pipespec.yml), gitlab-ci (.gitlab-ci.yml), airflow (dags/), "
        "docker (deploy/docker/), kubernetes (deploy/kubernetes/), alerts "
        "(deploy/prometheus/). exports.yaml records what was exported; without TARGET every "
        "recorded target is exported again. With --check, write nothing and exit 3 naming "
        "each exported file that no longer matches.",
    )
    p.add_argument(
        "target",
        nargs="?",
        metavar="TARGET",
        help="github-actions, gitlab-ci, airflow, docker, kubernetes or alerts",
    )
    p.add_argument("--check", action="store_true", help="exit 3 naming every stale exported file")
    p.add_argument(
        "--group-by",
        choices=("stage", "file"),
        default=None,
        help="airflow: one task per stage (default) or per pipelines/ file",
    )
    production.add_parsers(sub)
    registry.add_parsers(sub)
    shadow.add_parsers(sub)
    from pipespec.cli import dataschema  # its command's heavy imports load only when it runs

    dataschema.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command in production.COMMANDS:
            return int(getattr(production, f"cmd_{args.command}")(args) or 0)
        if args.command in registry.COMMANDS:
            return int(getattr(registry, f"cmd_{args.command}")(args) or 0)
        if args.command in shadow.COMMANDS:
            return int(shadow.cmd_shadow(args) or 0)
        if args.command == "schema":
            from pipespec.cli.dataschema import cmd_schema

            return int(cmd_schema(args) or 0)
        from pipespec.cli import commands

        return int(getattr(commands, f"cmd_{args.command.replace('-', '_')}")(args) or 0)
    except PipespecError as exc:
        error(exc.message, exc.hint)
        return exc.exit_code
    except KeyboardInterrupt:
        error("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
