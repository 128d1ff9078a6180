"""Command line: ``mtl-tracing <command> ...`` (also ``python -m mtl_tracing``).

Two kinds of subcommand, neither of which edits this file to add:

- hand-written commands (``game``, ``sweep``, ``attack``, ``verify``, ``plot-sweep``,
  ``reproduce``, ...), one module each, registered in :data:`mtl_tracing.commands.COMMANDS`;
- one command per job of :data:`mtl_tracing.experiments.registry.JOBS` (``figure7``,
  ``figure3``, ``sweep-auc-tasks-dim``, ...), with the job's flags
  (:func:`registry.add_job_arguments`); it runs the job, prints its headline and the written
  paths, and checks the output.

Every command and job is reachable with hyphens, and with underscores too
(``sweep-auc-tasks-dim`` and ``sweep_auc_tasks_dim``). ``mtl-tracing --help`` lists them in
two groups, one line each. Building the parser imports no JAX (the job modules import it when
they run), so ``--help`` is fast. Bad input and unusable paths (any ``OSError``) end in one
line, ``mtl-tracing CMD: error: ...``, and exit status 2.
"""

from __future__ import annotations

import argparse
import functools
import sys

from mtl_tracing.commands import COMMANDS, check_required
from mtl_tracing.commands.cache import CACHE_MAX_BYTES, cache_dir, enable_compilation_cache
from mtl_tracing.experiments import registry

__all__ = [
    "main",
    "entry",
    "build_parser",
    "command_name",
    "CACHE_MAX_BYTES",
    "cache_dir",
    "enable_compilation_cache",
]


def command_name(name: str) -> str:
    """The command of a job or command name: hyphens (``sweep_auc_tasks_dim`` ->
    ``sweep-auc-tasks-dim``)."""
    return name.replace("_", "-")


def _names(name: str, aliases=()) -> tuple[str, list[str]]:
    """(command, [its other spellings]): the hyphenated name, then the underscore spellings
    and the aliases (in both spellings), without repeats."""
    main_name = command_name(name)
    more = []
    for n in (name.replace("-", "_"), *aliases, *(command_name(a) for a in aliases)):
        if n != main_name and n not in more:
            more.append(n)
    return main_name, more


def _listing() -> str:
    """The grouped list of ``--help``: commands, then jobs, one line each."""

    def line(name: str, shown: list[str], text: str) -> str:
        label = name + (f" ({', '.join(shown)})" if shown else "")
        return f"  {label:<28} {text}"

    lines = ["commands:"]
    for mod in COMMANDS:
        lines.append(line(command_name(mod.NAME), [], mod.HELP))
    lines += ["", "jobs (figures, tables, sweeps; `reproduce` runs the default ones):"]
    for job in registry.JOBS:
        if job.command:
            lines.append(line(command_name(job.name), list(job.aliases), job.help))
    lines += ["", "`mtl-tracing COMMAND --help` for a command's flags; underscores work too."]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtl-tracing",
        description="Task-inference (tracing) attacks on multitask learning: theory, simulation.",
        epilog=_listing(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", help="a command or job, below")
    sub.required = True
    for mod in COMMANDS:
        name, aliases = _names(mod.NAME)
        description = getattr(mod, "DESCRIPTION", mod.HELP)
        p = sub.add_parser(name, aliases=aliases, description=description)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run, _parser=p)
    for job in registry.JOBS:
        if not job.command:
            continue
        name, aliases = _names(job.name, job.aliases)
        p = sub.add_parser(name, aliases=aliases, description=job.help)
        registry.add_job_arguments(p, job)
        p.set_defaults(_run=functools.partial(_run_job, job), _parser=p)
    return parser


def _run_job(job: registry.Job, args: argparse.Namespace) -> int:
    return registry.main_from_args(job, args, prog=f"mtl-tracing {args.command}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_required(args._parser, args)
    try:
        return int(args._run(args) or 0)
    except (ValueError, OSError) as err:
        # Bad input and unusable paths are reported on one line, never as a traceback.
        print(f"mtl-tracing {args.command}: error: {err}", file=sys.stderr)
        return 2


def entry() -> int:
    """The ``mtl-tracing`` executable: :func:`main` with the compilation cache on."""
    enable_compilation_cache()
    return main()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(entry())
