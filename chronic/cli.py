"""The `chronic` command: one entry point per stage of the loop, each a thin shell over a library function.

Heavy imports (polars, duckdb, the synth) happen inside the commands so that `chronic --help` is instant.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
     Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from chronic.settings import Settings

console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)  # logs and CI: no 80-column wrap


def _progress(transient: bool = False) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )


def _dask_option(f):
    return click.option(
        "--dask", "dask_address", default=None, metavar="ADDRESS",
        help="Run on Dask: 'local' starts a LocalCluster here, else a scheduler address (tcp://host:8786); "
             "env CHRONIC_DASK_ADDRESS. Reads the archive's Parquet partitions (exported when out of date).")(f)


@contextmanager
def _dask(settings: Settings, address: str | None) -> Iterator[object | None]:
    """The Dask client the command runs on (None = the single-machine path)."""
    address = address or settings.dask_address
    if not address:
        yield None
        return
    from chronic.distributed.cluster import dask_client

    console.print(f"running on Dask ({address})")
    with dask_client(address, n_workers=settings.dask_workers) as client:
        yield client


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory holding everything a run writes (env CHRONIC_DATA_DIR; default ./chronic-data).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log each step.")
@click.version_option(package_name="chronic")
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None, verbose: bool) -> None:
    """chronic: chronic-disease prevention at population scale.

    Health archive -> risk for six diseases -> interventions -> follow-up.
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    overrides = {"data_dir": data_dir} if data_dir is not None else {}
    ctx.obj = Settings(**overrides)


@main.command()
@click.option("--people", type=click.IntRange(min=1), default=20_000, show_default=True, help="Number of people.")
@click.option("--clinics", type=click.IntRange(min=1), default=3, show_default=True, help="Number of clinics.")
@click.option("--years", type=click.IntRange(min=1, max=30), default=5, show_default=True,
              help="Years of history, ending at --end-date.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed: the same seed gives the same files.")
@click.option("--end-date", type=click.DateTime(formats=["%Y-%m-%d"]), default="2025-12-31", show_default=True,
              help="Last day of the simulated history.")
@click.option("--chunk-size", type=click.IntRange(min=100), default=10_000, show_default=True,
              help="People per chunk (bounds memory; part of what the seed reproduces).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: DATA_DIR/synth).")
@click.pass_obj
def synth(settings: Settings, people: int, clinics: int, years: int, seed: int, end_date, chunk_size: int,
          out: Path | None) -> None:
    """Write a synthetic multi-clinic population: device CSV, FHIR NDJSON, Open mHealth JSON and its truth.

    The model behind it is documented in docs/synth.md; truth/ holds the ground truth (disease onsets, the
    injected bad rows) and is never ingested.
    """
    out = out or settings.synth_dir
    summary = _synth(out, people=people, clinics=clinics, years=years, seed=seed, end_date=end_date.date(),
                     chunk_size=chunk_size)
    console.print(f"[green]wrote[/green] {out}: {_fmt_counts(summary)}")


def _synth(out: Path, *, people: int, clinics: int, years: int, seed: int, end_date: date, chunk_size: int) -> dict:
    from chronic.synth import generate

    with _progress() as bar:
        task = bar.add_task("synth people", total=people)
        return generate(out, people=people, clinics=clinics, years=years, seed=seed, end_date=end_date,
                        chunk_size=chunk_size, progress=lambda n: bar.advance(task, n))


def _fmt_counts(summary: dict) -> str:
    keys = [k for k in ("people", "files", "rows", "bad_rows") if k in summary]
    return ", ".join(f"{summary[k]:,} {k.replace('_', ' ')}" for k in keys if isinstance(summary[k], int))


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.pass_obj
def ingest(settings: Settings, paths: tuple[Path, ...], as_json: bool) -> None:
    """Load device CSV, FHIR R4 NDJSON and Open mHealth files (or folders of them) into the archive.

    Formats are detected from content (docs/formats.md). Bad rows go to the `quarantine` table with file, line,
    field and reason; a file already loaded is skipped. Exits 0 when it loaded what it could, 1 only when it
    could not run at all.
    """
    from chronic.archive.ingest import IngestError

    try:
        summary = _ingest(settings, list(paths))
    except IngestError as exc:
        console.print(f"[red]error:[/red] {exc}")
        sys.exit(1)
    if as_json:
        click.echo(summary.to_json())
    else:
        _print_ingest(summary)


def _ingest(settings: Settings, paths: list[Path]):
    from chronic.archive.ingest import discover, ingest as run_ingest

    files = discover(paths)
    total = sum(f.stat().st_size for f in files)
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console) as bar:
        task = bar.add_task(f"ingest {len(files):,} files", total=total)
        return run_ingest(files, settings=settings, progress=lambda _f, n: bar.advance(task, n))


def _print_ingest(summary) -> None:
    totals = summary.totals
    if summary.changed_nothing and summary.files:
        console.print("[yellow]nothing to do:[/yellow] every file was already ingested (same content).")
    table = Table(title=f"ingest into {summary.db_path}", show_lines=False)
    for col in ("status", "files", "rows read", "loaded", "quarantined", "skipped"):
        table.add_column(col, justify="right" if col != "status" else "left")
    by_status: dict[str, list] = {}
    for f in summary.files:
        by_status.setdefault(f.status, []).append(f)
    for status, files in sorted(by_status.items()):
        table.add_row(status, f"{len(files):,}", f"{sum(f.rows_read for f in files):,}",
                      f"{sum(f.rows_loaded for f in files):,}", f"{sum(f.rows_quarantined for f in files):,}",
                      f"{sum(f.rows_skipped for f in files):,}")
    console.print(table)
    if totals["quarantined_by_reason"]:
        q = Table(title="quarantined rows by reason (see the quarantine table)")
        q.add_column("reason")
        q.add_column("rows", justify="right")
        q.add_column("first example")
        examples: dict[str, str] = {}
        for f in summary.files:
            for ex in f.examples:
                reason = ex.rsplit(": ", 1)[-1]
                examples.setdefault(reason, f"{_short(f.file)} {ex.rsplit(':', 1)[0]}")
        for reason, n in totals["quarantined_by_reason"].items():
            q.add_row(reason, f"{n:,}", examples.get(reason, ""))
        console.print(q)
    for f in summary.files:
        if f.status in ("failed", "unrecognised"):
            console.print(f"[red]{f.status}[/red] {f.file}: {f.error}")


@main.command()
@click.option("--mode", type=click.Choice(["incident", "screen"]), default="incident", show_default=True,
              help="incident: onset within the horizon after --as-of; screen: positive at --as-of.")
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), required=True,
              help="The as-of date (YYYY-MM-DD).")
@click.option("--horizon-years", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Incident horizon in years (default: settings horizon_years = 3).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.pass_obj
def labels(settings: Settings, mode: str, as_of, horizon_years: float | None, as_json: bool) -> None:
    """Build the `label` table: per person x task, 1 / 0 / missing and the reason, for the six tasks.

    Definitions and their guidelines: chronic/reference/tasks.toml and docs/labels.md. Prints positives,
    negatives, missing and prevalence per task and clinic.
    """
    from chronic.archive.db import connect
    from chronic.clinical.labels import build_labels, summarise, write_labels

    if not settings.db_path.exists():
        console.print(f"[red]error:[/red] no archive at {settings.db_path}; run `chronic ingest` first")
        sys.exit(1)
    con = connect(settings.db_path)
    try:
        with console.status(f"labelling ({mode}, as of {as_of.date()})"):
            frame = build_labels(con, as_of=as_of.date(), mode=mode, horizon_years=horizon_years, settings=settings)
            write_labels(con, frame)
    finally:
        con.close()
    summary = summarise(frame)
    if as_json:
        click.echo(json.dumps(summary.to_dicts(), indent=2, default=str))
        return
    _print_labels(frame, summary, mode, as_of.date())


def _print_labels(frame, summary, mode: str, as_of: date, *, only_overall: bool = False) -> None:
    horizon = f", horizon {frame['horizon_years'][0]:g} y" if mode == "incident" and frame.height else ""
    table = Table(title=f"labels ({mode}, as of {as_of}{horizon}): {frame.height:,} rows in table `label`")
    for col in ("task", "clinic", "positives", "negatives", "missing", "prevalence"):
        table.add_column(col, justify="left" if col in ("task", "clinic") else "right")
    for r in summary.iter_rows(named=True):
        if only_overall and r["clinic_id"] != "all":
            continue
        prev = "" if r["prevalence"] is None else f"{100 * r['prevalence']:.1f} %"
        style = "bold" if r["clinic_id"] == "all" and not only_overall else None
        table.add_row(r["task"], str(r["clinic_id"]), f"{r['positives']:,}", f"{r['negatives']:,}",
                      f"{r['missing']:,}", prev, style=style)
    console.print(table)


@main.command()
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), required=True,
              help="The as-of date (YYYY-MM-DD): fields use data before it.")
@click.option("--mode", type=click.Choice(["incident", "screen"]), default="incident", show_default=True,
              help="Which labels select the crosses.")
@click.option("--horizon-years", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Incident horizon in years (default: settings horizon_years = 3).")
@click.option("--report", "report_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the funnel report as JSON here (default: DATA_DIR/features/report-<as-of>-<mode>.json).")
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, help="Top rules shown per task.")
@click.option("--no-signal-check", is_flag=True, help="Skip the held-out logistic-regression check.")
@_dask_option
@click.pass_obj
def features(settings: Settings, as_of, mode: str, horizon_years: float | None, report_file: Path | None, top: int,
             no_signal_check: bool, dask_address: str | None) -> None:
    """Fit the crossed features on the archive: fields -> bins -> crosses of order 1-3 -> support -> per-task top K.

    Prints the funnel and the top rules per task, and (unless --no-signal-check) the held-out AUROC of a logistic
    regression on the selected crosses vs on the binned fields alone. Saves the fitted transform in the data dir.
    """
    from chronic.archive.db import connect
    from chronic.features.report import fit_features

    if not settings.db_path.exists():
        console.print(f"[red]error:[/red] no archive at {settings.db_path}; run `chronic ingest` first")
        sys.exit(1)
    day = as_of.date()
    con = connect(settings.db_path)
    try:
        with _dask(settings, dask_address) as client, console.status(f"fitting crossed features ({mode}, as of {day})"):
            model, report = fit_features(con, as_of=day, mode=mode, horizon_years=horizon_years, settings=settings,
                                         top=top, signal_check=not no_signal_check, dask=client)
    finally:
        con.close()
    out_dir = settings.data_dir / "features"
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / f"cross_features-{day}-{mode}"
    model.save(model_path)
    report["model_path"] = str(model_path)
    report_file = report_file or out_dir / f"report-{day}-{mode}.json"
    report_file.parent.mkdir(parents=True, exist_ok=True)
    report_file.write_text(json.dumps(report, indent=2, default=str))
    _print_features(report)
    console.print(f"report: {report_file}  transform: {model_path}")


def _print_features(report: dict) -> None:
    funnel = Table(title=f"crossed features ({report['mode']}, as of {report['as_of']}): the funnel")
    funnel.add_column("stage")
    funnel.add_column("count", justify="right")
    for key, value in report["funnel"].items():
        if isinstance(value, dict):
            for sub, n in value.items():
                funnel.add_row(f"{key}: {sub}", f"{n:,}" if isinstance(n, int) else str(n))
        else:
            funnel.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    console.print(funnel)
    for task, rules in report["top_rules"].items():
        t = Table(title=f"top rules: {task}", show_header=True)
        t.add_column("rule")
        t.add_column("order", justify="right")
        t.add_column("support", justify="right")
        t.add_column("score", justify="right")
        for r in rules:
            t.add_row(r["rule"], str(r["order"]), f"{r['support']:,}", f"{r['score']:.3f}")
        console.print(t)
    check = report.get("signal_check")
    if check:
        t = Table(title="held-out AUROC, logistic regression: selected crosses vs binned fields alone")
        for col in ("task", "test people", "positives", "crosses", "binned fields", "difference [paired 95% CI]"):
            t.add_column(col, justify="left" if col == "task" else "right")
        for task, r in check.items():
            if task == "summary":
                continue
            if "skipped" in r:
                t.add_row(task, "", "", r["skipped"], "")
                continue
            ci = r.get("auroc_diff_ci")
            diff = f"{r['auroc_diff']:+.4f} [{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else ""
            t.add_row(task, f"{r['n_test']:,}", f"{r['positives_test']:,}", str(r.get("crosses")),
                      str(r.get("binned_fields")), diff)
        console.print(t)


@main.command()
@click.option("--mode", type=click.Choice(["incident", "screen"]), default="incident", show_default=True,
              help="incident: onset within the horizon after the as-of date; screen: positive now.")
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="As-of date (default: incident = the last reading minus the horizon; screen = the last reading).")
@click.option("--horizon-years", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Incident horizon in years (default: settings horizon_years = 3).")
@click.option("--report", "report_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the JSON report here (default: DATA_DIR/runs/train-<mode>-<as-of>/report.json).")
@click.option("--no-ablations", is_flag=True, help="Train SMT-GBDT only (no single-task, supervised-only, no-crosses).")
@click.option("--bootstrap", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Bootstrap resamples for the confidence intervals.")
@click.option("--leave-one-clinic-out", "by_clinic", is_flag=True,
              help="Also score each clinic with a model fitted on the other clinics (one more fit per clinic).")
@_dask_option
@click.pass_obj
def train(settings: Settings, mode: str, as_of, horizon_years: float | None, report_file: Path | None,
          no_ablations: bool, bootstrap: int, by_clinic: bool, dask_address: str | None) -> None:
    """Train SMT-GBDT with its ablations, judge it against the clinical scores on held-out people, log it to MLflow
    and register it as `chronic-risk@challenger`.

    Prints one row per task: AUROC of the model, of each ablation and of the best clinical score, and the PPV ratio
    at the score's own cut-off sensitivity. The full report (CIs, calibration, every score) is JSON.
    """
    day = as_of.date() if as_of else _default_as_of(settings, mode, horizon_years)
    with _dask(settings, dask_address) as client:
        _train(settings, mode=mode, as_of=day, horizon_years=horizon_years, report_file=report_file,
               ablations=not no_ablations, n_boot=bootstrap, dask=client, by_clinic=by_clinic)


def _default_as_of(settings: Settings, mode: str, horizon_years: float | None) -> date:
    from chronic.model.run import default_as_of

    try:
        return default_as_of(settings, mode, horizon_years)
    except (FileNotFoundError, ValueError) as e:
        console.print(f"[red]error:[/red] {e}")
        sys.exit(1)


def _train(settings: Settings, *, mode: str, as_of: date, horizon_years: float | None = None,
           report_file: Path | None = None, ablations: bool = True, n_boot: int = 1000, dask: object = None,
           by_clinic: bool = False) -> dict:
    from chronic.model.run import run_training

    started = time.perf_counter()
    try:
        with console.status(f"training ({mode}, as of {as_of})") as status:
            trained, path = run_training(
                settings, as_of=as_of, mode=mode, horizon_years=horizon_years, report_file=report_file,
                ablations=ablations, n_boot=n_boot, dask=dask, by_clinic=by_clinic,
                step=lambda s: status.update(f"training ({mode}, as of {as_of}): {s} "
                                             f"[{time.perf_counter() - started:.0f} s]"))
    except (FileNotFoundError, ValueError) as e:
        console.print(f"[red]error:[/red] {e}")
        sys.exit(1)
    _print_train(trained.report)
    if "leave_one_clinic_out" in trained.report:
        _print_by_clinic(trained.report["leave_one_clinic_out"])
    m = trained.report["mlflow"]
    console.print(f"report: {path}\nMLflow run {m['run_id']}, registered {settings.model_name} version "
                  f"{m['model_version']} as @challenger ({settings.tracking_uri})")
    return trained.report


def _print_train(report: dict) -> None:
    from chronic.model.train import MODELS

    t = Table(title=f"held-out AUROC ({report['mode']}, as of {report['as_of']}; "
                    f"{report['n_people']['test']:,} test people)")
    short = {"smt_gbdt": "SMT-GBDT", "single_task_lgbm": "single", "supervised_only": "sup.only",
             "no_crosses": "no-cross"}
    for col in ("task", "lab.", "pos.", *[short[m] for m in MODELS], "best score", "AUROC", "PPV x"):
        t.add_column(col, justify="left" if col in ("task", "best score") else "right", no_wrap=True)
    for task, e in report["tasks"].items():
        models = [e["models"].get(m, {}).get("auroc") for m in MODELS]
        scored = {k: v for k, v in e.get("scores", {}).items() if v.get("auroc") is not None}
        best = max(scored, key=lambda k: scored[k]["auroc"]) if scored else None
        row = [task, f"{e['n_test']:,}", f"{e['positives_test']:,}"]
        row += ["" if v is None else f"{v:.3f}" for v in models]
        if best:
            s = scored[best]
            ratio = s.get("ppv_ratio")
            row += [best.replace("_hypertension", "_htn").replace("_ckd_epi_2021", ""), f"{s['auroc']:.3f}",
                    "" if ratio is None else f"{ratio:.1f}"]
        else:
            row += ["-", "", ""]
        t.add_row(*row)
    console.print(t)


def _print_by_clinic(loco: dict) -> None:
    clinics = list(loco["clinics"])
    t = Table(title="leave-one-clinic-out AUROC (each clinic scored by a model fitted on the others)")
    for col in ("task", *clinics, "pooled", "calib. slope"):
        t.add_column(col, justify="left" if col == "task" else "right", no_wrap=True)
    for task, pooled in loco["pooled"].items():
        cells = [loco["clinics"][c]["tasks"][task].get("auroc") for c in clinics]
        m = pooled.get("models", {}).get("smt_gbdt", {})
        t.add_row(task, *["" if v is None else f"{v:.3f}" for v in cells],
                  "" if m.get("auroc") is None else f"{m['auroc']:.3f}",
                  "" if m.get("calibration_slope") is None else f"{m['calibration_slope']:.2f}")
    console.print(t)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON on stdout.")
@click.pass_obj
def models(settings: Settings, as_json: bool) -> None:
    """List the registered model versions with their held-out AUROC per task beside the champion's."""
    from chronic.model.review import list_versions, versions_display, versions_table

    table = versions_table(list_versions(settings))
    if as_json:
        click.echo(table.write_json())
        return
    if table.height == 0:
        console.print(f"no registered versions of {settings.model_name}: run `chronic train`")
        return
    shown = versions_display(table)
    t = Table(title=f"{settings.model_name}: AUROC [95% CI] and change vs the champion")
    for col in shown.columns:
        t.add_column(col)
    for row in shown.iter_rows():
        t.add_row(*[str(v) for v in row])
    console.print(t)


@main.command()
@click.option("--version", "version", default=None, help="Version to promote (default: the current challenger).")
@click.option("--force", is_flag=True, help="Promote even if the gate refuses (needs --reason; recorded as a tag).")
@click.option("--reason", default=None, help="Why the gate is overridden (required with --force).")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON on stdout.")
@click.pass_obj
def promote(settings: Settings, version: str | None, force: bool, reason: str | None, as_json: bool) -> None:
    """Move alias `champion` to a version if it passes the gate: no task worse than the champion beyond its CI,
    every task better than its clinical scores. Exit 1 when refused."""
    import getpass

    from chronic.model.review import promote as promote_version

    try:
        result = promote_version(settings, version=version, force=force, reason=reason,
                                 actor=f"cli:{getpass.getuser()}")
    except (ValueError, LookupError) as e:
        console.print(f"[red]error:[/red] {e}")
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, default=str))
    else:
        colour = "green" if result.promoted else "yellow" if result.status == "unchanged" else "red"
        console.print(f"[{colour}]{result.status}[/{colour}]: {settings.model_name} version {result.version}")
        for r in result.reasons:
            console.print(f"  - {r}")
    if not result.promoted and result.status != "unchanged":
        sys.exit(1)


def _as_of_option(help_text: str):
    return click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help=help_text)


def _day(as_of) -> date:
    return as_of.date() if as_of else date.today()


def _print_counts(title: str, summary: dict) -> None:
    t = Table(title=title)
    t.add_column("what")
    t.add_column("count", justify="right")
    for key, value in summary.items():
        if isinstance(value, dict):
            for sub, n in value.items():
                t.add_row(f"{key}: {sub}", f"{n:,}")
        elif isinstance(value, int):
            t.add_row(key, f"{value:,}")
    console.print(t)


@main.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to write (default: DATA_DIR/partitions).")
@click.pass_obj
def partitions(settings: Settings, out: Path | None) -> None:
    """Export the archive's people, observations, conditions, medications, family history and lifestyle as Parquet
    partitioned by clinic and month: what the Dask path (--dask) and any other engine read."""
    from chronic.archive.db import connect
    from chronic.distributed.partitions import export_partitions

    if not settings.db_path.exists():
        console.print(f"[red]error:[/red] no archive at {settings.db_path}; run `chronic ingest` first")
        sys.exit(1)
    out = out or settings.partitions_dir
    con = connect(settings.db_path, read_only=True)
    try:
        with console.status(f"writing Parquet partitions to {out}"):
            parts = export_partitions(con, out)
    finally:
        con.close()
    _print_counts(f"Parquet partitions at {out} ({len(parts.clinics)} clinics)", {"rows": parts.rows})


@main.command()
@_as_of_option("Score with fields as of this date (default: today).")
@click.option("--alias", default=None, help="Registry alias to use (default: champion, else challenger).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@_dask_option
@click.pass_obj
def score(settings: Settings, as_of, alias: str | None, as_json: bool, dask_address: str | None) -> None:
    """Score everyone with the registered model (champion, else challenger) and write the `risk` table: probability,
    band, percentile within the clinic and the top 3 rules per person and task."""
    from dataclasses import asdict

    from chronic.scoring import score_archive

    from chronic.model.score_report import report_scoring

    try:
        with _dask(settings, dask_address) as client, _progress(transient=True) as progress:
            bar = progress.add_task("scoring people", total=None)
            summary = score_archive(settings, as_of=_day(as_of), alias=alias, dask=client,
                                    progress=lambda k, n: progress.update(bar, completed=k, total=n))
    except (LookupError, FileNotFoundError) as e:
        console.print(f"[red]error:[/red] {e}")
        sys.exit(1)
    report = report_scoring(settings, summary)
    if as_json:
        click.echo(json.dumps(asdict(summary), indent=2, default=str))
        return
    t = Table(title=f"risk as of {summary.as_of}: {summary.people:,} people, {settings.model_name} "
                    f"version {summary.model_version} (@{summary.alias})")
    t.add_column("task")
    for b in ("low", "moderate", "high", "very_high"):
        t.add_column(b, justify="right")
    for task, bands in summary.by_band.items():
        t.add_row(task, *[f"{bands.get(b, 0):,}" for b in ("low", "moderate", "high", "very_high")])
    console.print(t)
    console.print(f"run report: {report}")


@main.command()
@click.argument("person_id")
@_as_of_option("Show the person as of this date (default: today).")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the self-contained HTML page here.")
@click.pass_obj
def person(settings: Settings, person_id: str, as_of, html_file: Path | None) -> None:
    """One person: archive summary, risks with their top rules, risk trend, plan with progress, flags and the next
    follow-up date (text in the terminal; --html for the clinician's page)."""
    from chronic.archive.db import connect
    from chronic.care.person_view import render_person_text, write_person_page

    con = connect(settings.db_path, read_only=True)
    try:
        if html_file:
            path = write_person_page(con, person_id, html_file, as_of=_day(as_of), settings=settings)
            console.print(f"person page: {path}")
        else:
            click.echo(render_person_text(con, person_id, as_of=_day(as_of), settings=settings))
    except KeyError:
        console.print("[red]error:[/red] no such person in the archive")
        sys.exit(1)
    finally:
        con.close()


@main.command()
@_as_of_option("Plan from the risks scored at this date (default: today).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.pass_obj
def plan(settings: Settings, as_of, as_json: bool) -> None:
    """Build personalised plans (diet, exercise, smoking, weight, monitoring, referral) from each person's risks and
    modifiable risk factors; every item carries its reason, a measurable target and its guideline."""
    from chronic.care.loop import make_plans

    try:
        summary = make_plans(settings, as_of=_day(as_of))
    except LookupError as e:
        console.print(f"[red]error:[/red] {e}")
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        _print_counts(f"plans as of {summary['as_of']}", summary)


@main.command()
@_as_of_option("Follow up as of this date (default: today); score this date first.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.pass_obj
def followup(settings: Settings, as_of, as_json: bool) -> None:
    """Follow up the plans in force: risk trends, progress toward each target, overdue / worsening flags and plan
    adjustments (escalate, refer, relax monitoring)."""
    from chronic.care.loop import run_followup

    try:
        summary = run_followup(settings, as_of=_day(as_of))
    except LookupError as e:
        console.print(f"[red]error:[/red] {e}")
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        _print_counts(f"follow-up as of {summary['as_of']}", summary)


@main.command()
@click.option("--clinic", default=None, help="Export one clinic (default: every clinic).")
@_as_of_option("Export the risks scored at this date (default: today).")
@click.option("--demo-key", is_flag=True, help="Use the public demo key when no export key is set (demo only).")
@click.pass_obj
def export(settings: Settings, clinic: str | None, as_of, demo_key: bool) -> None:
    """Write each clinic's pseudonymised export: risk.csv / .parquet, plans.csv, followup_due.csv,
    risk_assessment.ndjson (FHIR R4) and manifest.json, under DATA_DIR/exports/<clinic>/<date>/."""
    from chronic.archive.db import connect
    from chronic.export import ExportError, ExportKeyError, export_clinics

    con = connect(settings.db_path)
    try:
        results = export_clinics(con, settings, as_of=_day(as_of), clinic=clinic, demo=demo_key)
    except (ExportError, ExportKeyError) as e:
        console.print(f"[red]error:[/red] {e}")
        sys.exit(1)
    finally:
        con.close()
    t = Table(title="clinic exports")
    for col in ("clinic", "people", "risk rows", "directory"):
        t.add_column(col)
    for r in results:
        t.add_row(r.clinic, f"{r.people:,}", f"{r.rows.get('risk.csv', 0):,}", str(r.directory))
    console.print(t)


@main.command("synth-followup")
@click.option("--plan-start", type=click.DateTime(formats=["%Y-%m-%d"]), required=True,
              help="Start date of the plans to follow (the date `chronic plan` ran at).")
@click.option("--months", type=click.IntRange(min=1, max=36), default=6, show_default=True,
              help="Length of the simulated follow-up period.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed: the same seed gives the same files.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: DATA_DIR/synth-followup).")
@click.pass_obj
def synth_followup(settings: Settings, plan_start, months: int, seed: int, out: Path | None) -> None:
    """Simulate a follow-up period for the plans in the archive: adherence that varies by person, true effects of
    each item for adherers, drift for everyone; device CSV to ingest, the adherence record and the truth."""
    from chronic.synth.intervention import simulate_followup

    out = out or settings.data_dir / "synth-followup"
    summary = simulate_followup(settings.db_path, out, plan_start=plan_start.date(), months=months, seed=seed)
    console.print(f"follow-up simulated into {out}: ingest {out / 'devices'}; adherence record "
                  f"{out / 'followup' / 'adherence.csv'}; truth {out / 'truth' / 'intervention.json'}")
    click.echo(json.dumps(summary, indent=2, default=str))


def _estimate_text(point: float | None, lo: float | None = None, hi: float | None = None) -> str:
    """An estimate with its CI, or why there is none (fewer adherers or non-adherers than the estimator needs)."""
    if point is None:
        return "too few people to compare"
    return f"{point:.2f}" if lo is None or hi is None else f"{point:.2f} [{lo:.2f}, {hi:.2f}]"


@main.command()
@click.option("--plan-start", type=click.DateTime(formats=["%Y-%m-%d"]), required=True,
              help="Start date of the plans whose effect is estimated.")
@_as_of_option("End of the follow-up period (default: today).")
@click.option("--adherence", "adherence_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="The clinic's adherence record (CSV: plan_id, item_id, adhered).")
@click.option("--bootstrap", type=click.IntRange(min=50), default=500, show_default=True,
              help="Bootstrap resamples for the 95% CIs.")
@click.option("--truth", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A synthetic truth/intervention.json to print the true effects beside the estimates.")
@click.option("--json", "as_json", is_flag=True, help="Print the estimates as JSON on stdout.")
@click.pass_obj
def effect(settings: Settings, plan_start, as_of, adherence_file: Path, bootstrap: int, truth: Path | None,
           as_json: bool) -> None:
    """Estimate each plan item type's effect on its target indicator (and on risk): adherers vs comparable
    non-adherers, weighted on baseline risk and factors, with 95% CIs beside the naive before/after change."""
    from chronic.archive.db import connect
    from chronic.care.effect import estimate_effects, read_adherence

    con = connect(settings.db_path, read_only=True)
    try:
        frame = estimate_effects(con, plan_start=plan_start.date(), as_of=_day(as_of),
                                 adherence=read_adherence(adherence_file), n_boot=bootstrap, seed=settings.seed)
    finally:
        con.close()
    true = {k: v["true_effect"] for k, v in json.loads(truth.read_text())["items"].items()} if truth else {}
    if as_json:
        click.echo(frame.write_json())
        return
    t = Table(title=f"intervention effects: plans of {plan_start.date()}, followed to {_day(as_of)}")
    for col in ("item", "measure", "adherent / not", "effect [95% CI]", "naive before/after [95% CI]", "truth"):
        t.add_column(col, justify="left" if col in ("item", "measure") else "right")
    for r in frame.iter_rows(named=True):
        tv = true.get(r["item_type"])
        t.add_row(r["item_type"], f"{r['measure']} ({r['unit']})", f"{r['n_adherent']} / {r['n_not_adherent']}",
                  _estimate_text(r["effect"], r["effect_lo"], r["effect_hi"]),
                  _estimate_text(r["naive_change"], r["naive_lo"], r["naive_hi"]),
                  "" if tv is None else f"{tv:.2f}")
    console.print(t)


@main.command()
@click.option("--deployment", "names", multiple=True,
              help="Serve only these (name or flow/name); default: all in prefect.yaml.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Most flow runs at once.")
@_dask_option
@click.option("--port", type=int, default=None, help="Port of the local Prefect server (default: a free one).")
@click.pass_obj
def serve(settings: Settings, names: tuple[str, ...], limit: int | None, port: int | None,
          dask_address: str | None) -> None:
    """Run the prefect.yaml deployments on their schedules (starts a local Prefect server under DATA_DIR/prefect
    unless PREFECT_API_URL is set); Ctrl-C stops. With --dask, the flows' tasks run on a Prefect DaskTaskRunner."""
    from chronic.deployments import serve_project

    if dask_address:
        settings = settings.model_copy(update={"dask_address": dask_address})
        os.environ["CHRONIC_DASK_ADDRESS"] = dask_address  # the flow runs read their settings from the environment
    serve_project(settings, names=names, limit=limit, port=port,
                  on_ready=lambda url: console.print(f"Prefect server {url} (UI: {url.removesuffix('/api')})"))


@main.command()
@click.option("--people", type=click.IntRange(min=100), default=None,
              help="People to simulate (default: settings demo_people = 20,000).")
@click.option("--seed", type=int, default=None, help="Seed (default: settings seed).")
@click.pass_obj
def demo(settings: Settings, people: int | None, seed: int | None) -> None:
    """Run the whole loop on a synthetic population in the data dir: synth, ingest, check the quarantine against the
    injected truth, label, train SMT-GBDT and judge it against the clinical scores, then score everyone, plan,
    simulate six months of follow-up, ingest it, re-score, follow up, estimate intervention effects against the
    simulated truth, export every clinic (demo key) and write three person pages."""
    from chronic.archive.audit import quarantine_vs_manifest
    from chronic.archive.db import connect
    from chronic.clinical.labels import build_labels, summarise, write_labels
    from chronic.demo import care_loop, demo_dates

    people = people or settings.demo_people
    seed = settings.seed if seed is None else seed
    out = settings.synth_dir
    end = date(2025, 12, 31)
    started = time.perf_counter()
    console.rule(f"chronic demo: {people:,} people -> {settings.data_dir}")
    if (out / "truth" / "manifest.json").exists() and _same_synth(out, people, seed):
        console.print(f"synthetic population already in {out} (same people and seed): reusing it")
    else:
        _synth(out, people=people, clinics=3, years=5, seed=seed, end_date=end, chunk_size=10_000)
    t_synth = time.perf_counter() - started
    summary = _ingest(settings, [out / "devices", out / "ehr", out / "mhealth"])
    _print_ingest(summary)
    t_ingest = time.perf_counter() - started - t_synth
    _print_archive(settings)
    audit = quarantine_vs_manifest(settings.db_path, out)
    console.print(
        f"quarantine vs the {audit['injected_rows']:,} injected bad rows: precision {audit['precision']:.4f}, "
        f"recall {audit['recall']:.4f}, same reason {audit['reason_agreement']:.4f}"
    )
    dates = demo_dates(end)  # training: a 3-year horizon inside the history; the care loop: from its end
    as_of = dates.train_as_of
    con = connect(settings.db_path)
    try:
        frame = build_labels(con, as_of=as_of, mode="incident", settings=settings)
        write_labels(con, frame)
    finally:
        con.close()
    _print_labels(frame, summarise(frame), "incident", as_of, only_overall=True)
    t_train = time.perf_counter()
    _train(settings, mode="incident", as_of=as_of)
    t_train = time.perf_counter() - t_train
    t_loop = time.perf_counter()
    with console.status("care loop") as status:
        loop = care_loop(settings, dates=dates, seed=seed, say=lambda s: status.update(f"care loop: {s}"))
    t_loop = time.perf_counter() - t_loop
    _print_loop(loop, dates)
    t_all = time.perf_counter() - started
    from chronic.demo import outputs

    where = Table(title="where everything is")
    where.add_column("output")
    where.add_column("path")
    for what, path in outputs(settings).items():
        where.add_row(what, str(path))
    console.print(where)
    console.print(f"[green]demo done[/green] in {t_all:.0f} s (synth {t_synth:.0f} s, ingest {t_ingest:.0f} s, "
                  f"train {t_train:.0f} s, care loop {t_loop:.0f} s)")


def _print_loop(loop: dict, dates) -> None:
    s0, s1 = loop["score_start"], loop["score_followup"]
    t = Table(title=f"people by risk band at {dates.plan_start} (model version {s0.model_version})")
    t.add_column("task")
    for b in ("low", "moderate", "high", "very_high"):
        t.add_column(b, justify="right")
    for task, bands in s0.by_band.items():
        t.add_row(task, *[f"{bands.get(b, 0):,}" for b in ("low", "moderate", "high", "very_high")])
    console.print(t)
    _print_counts(f"plans from {dates.plan_start}", {k: v for k, v in loop["plans"].items() if k != "as_of"})
    _print_counts(f"follow-up at {dates.followup_as_of} ({s1.people:,} people re-scored)",
                  {k: v for k, v in loop["followup"].items() if k != "as_of"})
    e = Table(title="intervention effects vs the simulated truth (adjusted for who adheres)")
    for col in ("item", "adherent / not", "true effect", "estimate [95% CI]", "naive before/after"):
        e.add_column(col, justify="left" if col == "item" else "right")
    truth = loop["effect_truth"]
    for r in loop["effects"].iter_rows(named=True):
        tv = truth.get(r["item_type"])
        e.add_row(f"{r['item_type']} ({r['measure']}, {r['unit']})", f"{r['n_adherent']} / {r['n_not_adherent']}",
                  "" if tv is None else f"{tv:.2f}", _estimate_text(r["effect"], r["effect_lo"], r["effect_hi"]),
                  _estimate_text(r["naive_change"]))
    console.print(e)
    x = Table(title=f"clinic exports at {dates.followup_as_of} (demo key)")
    for col in ("clinic", "people", "directory"):
        x.add_column(col)
    for r in loop["exports"]:
        x.add_row(r.clinic, f"{r.people:,}", str(r.directory))
    console.print(x)
    console.print("person pages: " + ", ".join(str(p) for p in loop["pages"]))


def _same_synth(out: Path, people: int, seed: int) -> bool:
    manifest = json.loads((out / "truth" / "manifest.json").read_text())
    params = manifest.get("parameters", manifest)
    return params.get("people") == people and params.get("seed") == seed


def _short(path: str) -> str:
    """A path as the user would type it from here."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


def _print_archive(settings: Settings) -> None:
    from chronic.archive.db import connect, sql

    con = connect(settings.db_path, read_only=True)
    try:
        counts = con.sql(sql("archive_counts")).fetchall()
    finally:
        con.close()
    table = Table(title="health archive")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, n in counts:
        table.add_row(name, f"{n:,}")
    console.print(table)


if __name__ == "__main__":
    main()
