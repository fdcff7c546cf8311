"""Hyperparameter search with Optuna, every trial a DVC experiment.

A ``configs/hparams_search/NAME.yaml`` option names the metric to optimise, its direction,
the number of trials, the sampler and the search space in Hydra's sweep grammar
(``choice(...)``, ``range(...)``, ``interval(...)``, ``tag(log, interval(...))``). Trials run in
batches of ``jobs`` parallel DVC experiments; Optuna is driven directly (ask/tell), not
through the Hydra sweeper plugin, so current Optuna works.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipespec.core.config import Sampler
from pipespec.core.errors import ConfigError
from pipespec.engine.experiments import Trial, collect, experiment_name, queue, run_queue
from pipespec.engine.project import Project


@dataclass
class SearchResult:
    metric: str
    direction: str
    trials: list[Trial]
    best: Trial | None


def distributions(space: dict[str, Any]) -> dict[str, Any]:
    """Optuna distributions from a search space written in Hydra's sweep grammar."""
    import optuna
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    out: dict[str, Any] = {}
    for key, expr in space.items():
        where = f"hparams_search.params.{key}"
        try:
            value: Any = parser.parse_override(f"{key}={expr}").value()
        except HydraException as exc:
            raise ConfigError(f"{where}: cannot parse '{expr}': {exc}") from None
        tags: set[str] = set(getattr(value, "tags", set()) or set())
        v: Any = value
        if isinstance(value, ChoiceSweep):
            out[key] = optuna.distributions.CategoricalDistribution(list(v.list))
        elif isinstance(value, RangeSweep):
            start, stop, step = v.start, v.stop, v.step
            if all(isinstance(v, int) for v in (start, stop, step)):
                out[key] = optuna.distributions.IntDistribution(start, stop - 1, step=step)
            else:
                out[key] = optuna.distributions.FloatDistribution(start, stop, step=step)
        elif isinstance(value, IntervalSweep):
            if "int" in tags:
                out[key] = optuna.distributions.IntDistribution(
                    int(v.start), int(v.end), log="log" in tags
                )
            else:
                out[key] = optuna.distributions.FloatDistribution(
                    float(v.start), float(v.end), log="log" in tags
                )
        else:
            raise ConfigError(
                f"{where}: '{expr}' is not a search range",
                hint="Use choice(a, b), range(start, stop, step) or "
                "interval(low, high), optionally tag(log, interval(...)).",
            )
    return out


def search(
    project: Project, spec: dict[str, Any], base: tuple[str, ...], *, seed: int
) -> SearchResult:
    """Run the search that ``spec`` (the composed ``hparams_search``) describes."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # direction and sampler are enums of the schema: composition refused any other value
    metric, direction = spec["metric"], spec["direction"]
    samplers = {
        Sampler.tpe.value: optuna.samplers.TPESampler,
        Sampler.random.value: optuna.samplers.RandomSampler,
    }
    space = distributions(spec["params"])
    study = optuna.create_study(direction=direction, sampler=samplers[spec["sampler"]](seed=seed))
    trials: list[Trial] = []
    n_trials, jobs = int(spec["n_trials"]), max(1, int(spec["jobs"]))
    while len(trials) < n_trials:
        batch = [study.ask(space) for _ in range(min(jobs, n_trials - len(trials)))]
        runs = []
        for asked in batch:
            chosen = tuple(f"{k}={_text(v)}" for k, v in asked.params.items())
            overrides = (*base, *chosen)
            name = f"trial-{asked.number:03d}," + experiment_name(chosen)
            runs.append((asked, Trial(overrides, name[:200])))
        queue(project, [t for _, t in runs])
        if any(t.status == "queued" for _, t in runs):
            run_queue(project, jobs)
            collect(project, [t for _, t in runs])
        for asked, trial in runs:
            value = trial.metrics.get(metric)
            if trial.status == "success" and value is None:
                trial.status = "failed"
                trial.reason = f"no metric '{metric}' (metrics: {', '.join(sorted(trial.metrics))})"
            if trial.status == "success":
                study.tell(asked, float(value))  # type: ignore[arg-type]
            else:
                study.tell(asked, state=optuna.trial.TrialState.FAIL)
            trials.append(trial)
    done = [t for t in trials if t.status == "success"]
    best = None
    if done:
        pick = max if direction == "maximize" else min
        best = pick(done, key=lambda t: float(t.metrics[metric]))
    return SearchResult(metric, direction, trials, best)


def _text(value: Any) -> str:
    if isinstance(value, float):
        return repr(round(value, 10))
    return str(value)
