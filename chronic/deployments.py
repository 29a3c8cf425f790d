"""The deployments in `prefect.yaml`, served from one process (`chronic serve`) on a local Prefect server.

`prefect.yaml` at the root of the checkout is the single list of deployments. `prefect deploy --all` reads it for a
work pool. This module reads the same file for `chronic serve`:

- `load_deployments()` parses it into `DeploymentSpec`s. It loads each entrypoint's flow and checks the cron and the
  parameters against the flow's signature. Errors name the deployment.
- `build_deployments()` turns the specs into Prefect `RunnerDeployment`s for one data dir.
- `serve_all()` serves those deployments with `prefect.serve`.
- `serve_project()` is `chronic serve`: it checks prefect.yaml, then runs `serve_all` inside `ensure_server`.
- `ensure_server()` gives them a Prefect server. Schedules need the server's scheduler service, and the ephemeral API
  Prefect starts when PREFECT_API_URL is unset runs flows but never schedules them. When PREFECT_API_URL is unset,
  the context starts `prefect server start` on a free local port with PREFECT_HOME = DATA_DIR/prefect (SQLite database
  `prefect.db`, log `server.log`). It waits for /api/health and stops the server on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from chronic.settings import Settings

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.deployments.runner import RunnerDeployment

#: The checkout's project file (chronic runs from its checkout; see README set-up).
DEFAULT_PROJECT = Path(__file__).resolve().parents[1] / "prefect.yaml"
#: A parameter value `chronic-data` or `chronic-data/...` in prefect.yaml means "under the data dir".
DATA_DIR_TOKEN = "chronic-data"
#: Default timezone of a schedule without one.
DEFAULT_TIMEZONE = "UTC"


class DeploymentError(ValueError):
    """prefect.yaml declares a deployment chronic cannot load (bad entrypoint, cron or parameters)."""


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment of prefect.yaml, validated, with its flow loaded."""

    name: str
    entrypoint: str
    cron: str | None
    timezone: str
    parameters: dict[str, Any]
    description: str = ""
    tags: tuple[str, ...] = ()
    flow: Flow | None = field(default=None, compare=False, repr=False)
    #: Folder of the project file: entrypoint paths are relative to it and it goes on the import path (the flows
    #: import each other as `flows.<name>`).
    project_dir: Path = field(default=DEFAULT_PROJECT.parent, compare=False, repr=False)

    @property
    def flow_name(self) -> str:
        return self.flow.name if self.flow is not None else self.entrypoint.rsplit(":", 1)[-1]

    @property
    def full_name(self) -> str:
        """`<flow>/<deployment>`: how `prefect deployment run` names it."""
        return f"{self.flow_name}/{self.name}"


# -- loading -------------------------------------------------------------------------------------------------------


def load_deployments(path: str | Path | None = None, *, load_flows: bool = True) -> list[DeploymentSpec]:
    """The deployments of `path` (default: the checkout's prefect.yaml), in file order.

    With `load_flows` (the default), each entrypoint is imported and must be a Prefect flow. The parameters must then
    be names the flow accepts, must include every parameter the flow requires, and must validate against the flow's
    signature. Raises `DeploymentError` naming the deployment when anything is wrong.
    """
    path = Path(path) if path else DEFAULT_PROJECT
    if not path.is_file():
        raise DeploymentError(f"no Prefect project file at {path}")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise DeploymentError(f"{path}: not valid YAML: {exc}") from exc
    entries = doc.get("deployments") or []
    if not isinstance(entries, list):
        raise DeploymentError(f"{path}: `deployments` must be a list")
    specs: list[DeploymentSpec] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        spec = _parse_entry(entry, i, root=path.parent, load_flows=load_flows)
        if spec.name in seen:
            raise DeploymentError(f"deployment {spec.name!r}: declared twice in {path}")
        seen.add(spec.name)
        specs.append(spec)
    return specs


def _parse_entry(entry: Any, index: int, *, root: Path, load_flows: bool) -> DeploymentSpec:
    if not isinstance(entry, dict) or not entry.get("name"):
        raise DeploymentError(f"deployment #{index + 1}: needs a `name`")
    name = str(entry["name"])

    def fail(message: str) -> DeploymentError:
        return DeploymentError(f"deployment {name!r}: {message}")

    entrypoint = entry.get("entrypoint")
    if not entrypoint or not isinstance(entrypoint, str):
        raise fail("needs an `entrypoint` (path/to/file.py:flow_function)")
    cron, timezone = _schedule(entry, fail)
    parameters = entry.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise fail("`parameters` must be a mapping")
    tags = entry.get("tags") or []
    tags = (tags,) if isinstance(tags, str) else tuple(str(t) for t in tags)
    flow = _load_flow(entrypoint, root, fail) if load_flows else None
    if flow is not None:
        _check_parameters(flow, parameters, fail)
    return DeploymentSpec(name=name, entrypoint=entrypoint, cron=cron, timezone=timezone, parameters=dict(parameters),
                          description=str(entry.get("description") or ""), tags=tags, flow=flow, project_dir=root)


def _schedule(entry: dict, fail) -> tuple[str | None, str]:
    """The deployment's one cron schedule (or none) and its timezone, validated the way Prefect's server does."""
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    schedules = entry.get("schedules")
    if schedules is None and entry.get("schedule"):
        schedules = [entry["schedule"]]
    schedules = schedules or []
    if not isinstance(schedules, list):
        raise fail("`schedules` must be a list")
    if len(schedules) > 1:
        raise fail("chronic serves at most one schedule per deployment")
    if not schedules:
        return None, DEFAULT_TIMEZONE
    sched = schedules[0]
    if not isinstance(sched, dict) or not sched.get("cron"):
        raise fail("its schedule must be a `cron` schedule")
    unknown = set(sched) - {"cron", "timezone", "active", "day_or"}
    if unknown:
        raise fail(f"unsupported schedule keys {sorted(unknown)}")
    cron, timezone = str(sched["cron"]), str(sched.get("timezone") or DEFAULT_TIMEZONE)
    try:
        CronSchedule(cron=cron, timezone=timezone)
    except ValidationError as exc:
        problems = "; ".join(e["msg"] for e in exc.errors())
        raise fail(f"invalid cron schedule {cron!r} ({timezone}): {problems}") from exc
    return cron, timezone


def _load_flow(entrypoint: str, root: Path, fail) -> Flow:
    """The flow at `entrypoint`; a file path is taken relative to the project file's folder."""
    from prefect import Flow
    from prefect.flows import load_flow_from_entrypoint

    target = entrypoint
    if ":" in entrypoint:
        file_part, func = entrypoint.rsplit(":", 1)
        file = Path(file_part)
        file = file if file.is_absolute() else root / file
        if not file.is_file():
            raise fail(f"entrypoint {entrypoint!r}: no such file {file}")
        target = f"{file}:{func}"
    try:
        with _on_sys_path(root):
            flow = load_flow_from_entrypoint(target, use_placeholder_flow=False)
    except Exception as exc:  # ScriptError, MissingFlowError, ImportError...: all mean "bad entrypoint"
        cause = exc.__cause__ or exc
        raise fail(f"entrypoint {entrypoint!r} does not load: {type(cause).__name__}: {cause}") from exc
    if not isinstance(flow, Flow):
        raise fail(f"entrypoint {entrypoint!r} is not a Prefect flow")
    return flow


@contextlib.contextmanager
def _on_sys_path(folder: Path) -> Iterator[None]:
    """`folder` importable for the block (the flows import `flows.<name>` and `chronic`)."""
    entry = str(folder)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)


def _export_pythonpath(folders: Iterable[Path]) -> None:
    """Prepend `folders` to PYTHONPATH so flow-run subprocesses import the flows from any working directory."""
    current = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    new = [str(f) for f in dict.fromkeys(folders) if str(f) not in current]
    if new:
        os.environ["PYTHONPATH"] = os.pathsep.join(new + current)


def _check_parameters(flow: Flow, parameters: dict, fail) -> None:
    """Names and types of `parameters` against the flow's signature (Prefect's own schema and validation)."""
    schema = flow.parameters
    unknown = set(parameters) - set(schema.properties)
    if unknown:
        raise fail(f"parameters {sorted(unknown)} are not parameters of flow {flow.name!r} "
                   f"(it takes {sorted(schema.properties)})")
    missing = set(schema.required or []) - set(parameters)
    if missing:
        raise fail(f"flow {flow.name!r} requires parameters {sorted(missing)}")
    try:
        flow.validate_parameters(dict(parameters))
    except Exception as exc:  # ParameterTypeError carries pydantic's message
        raise fail(f"parameters do not fit flow {flow.name!r}: {exc}") from exc


# -- building and serving ------------------------------------------------------------------------------------------


def resolve_parameters(spec: DeploymentSpec, settings: Settings) -> dict[str, Any]:
    """The run parameters of `spec` for the data dir of `settings`.

    `chronic-data/...` values are rebased onto the data dir. `data_dir` is set when the flow takes it and prefect.yaml
    leaves it unset. Missing `paths` folders under the data dir are created, so an empty drop folder ingests nothing
    and does not fail.
    """
    data_dir = settings.data_dir.resolve()

    def rebase(value: Any) -> Any:
        if isinstance(value, str):
            if value == DATA_DIR_TOKEN or value.startswith(DATA_DIR_TOKEN + "/"):
                return str(data_dir / value[len(DATA_DIR_TOKEN):].lstrip("/"))
            return value
        if isinstance(value, list):
            return [rebase(v) for v in value]
        return value

    params = {k: rebase(v) for k, v in spec.parameters.items()}
    accepts = set(spec.flow.parameters.properties) if spec.flow is not None else {"data_dir"}
    if "data_dir" in accepts and params.get("data_dir") is None:
        params["data_dir"] = str(data_dir)
    for p in params.get("paths") or []:
        p = Path(p)
        if p.is_relative_to(data_dir) and not p.exists() and not p.suffix:
            p.mkdir(parents=True, exist_ok=True)
    return params


def build_deployments(settings: Settings, specs: Sequence[DeploymentSpec] | None = None) -> list[RunnerDeployment]:
    """One `RunnerDeployment` per spec: the flow with its cron schedule and its parameters for this data dir.

    With `settings.dask_address` the flows run their tasks on a Prefect DaskTaskRunner on that cluster.
    """
    from prefect.schedules import Cron

    specs = load_deployments() if specs is None else specs
    runner = None
    if settings.dask_address:
        from chronic.distributed.cluster import dask_task_runner

        runner = dask_task_runner(settings.dask_address, n_workers=settings.dask_workers)
    out = []
    for spec in specs:
        if spec.flow is None:
            raise DeploymentError(f"deployment {spec.name!r}: flow not loaded (load_deployments(load_flows=True))")
        flow = spec.flow if runner is None else spec.flow.with_options(task_runner=runner)
        out.append(flow.to_deployment(
            name=spec.name,
            schedule=Cron(spec.cron, timezone=spec.timezone) if spec.cron else None,
            parameters=resolve_parameters(spec, settings),
            description=spec.description or None,
            tags=list(spec.tags) or None,
        ))
    return out


def select(specs: Sequence[DeploymentSpec], names: Iterable[str] | None) -> list[DeploymentSpec]:
    """The specs named in `names` (deployment or flow/deployment names); all when `names` is empty."""
    names = list(names or [])
    if not names:
        return list(specs)
    by_name = {s.name: s for s in specs} | {s.full_name: s for s in specs}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise DeploymentError(f"no deployment named {', '.join(unknown)} (have: {', '.join(s.name for s in specs)})")
    chosen = {by_name[n].name: by_name[n] for n in names}  # de-duplicated, in the order asked
    return list(chosen.values())


def serve_all(settings: Settings, *, specs: Sequence[DeploymentSpec] | None = None,
              names: Iterable[str] | None = None, limit: int | None = None, run_once: bool = False,
              pause_on_shutdown: bool = True) -> list[RunnerDeployment]:
    """Serve the deployments of prefect.yaml (or `specs`, or those in `names`) against the current Prefect API.

    This blocks until interrupted (Ctrl-C), then pauses the schedules unless `pause_on_shutdown` is false. With
    `run_once`, it registers the deployments, runs the runs that are due now, and returns. Tests and cron-style use
    rely on this. `limit` caps how many flow runs run at once. Run it inside `ensure_server(settings)` so the schedules
    fire.
    """
    from prefect import serve
    from prefect.runner import Runner

    specs = select(load_deployments() if specs is None else specs, names)
    deployments = build_deployments(settings, specs)
    _export_pythonpath(s.project_dir for s in specs)
    if not run_once:
        serve(*deployments, limit=limit, pause_on_shutdown=pause_on_shutdown)
        return deployments
    runner = Runner(limit=limit, pause_on_shutdown=pause_on_shutdown)
    for deployment in deployments:
        runner.add_deployment(deployment)
    asyncio.run(runner.start(run_once=True))
    return deployments


def serve_project(settings: Settings, *, names: Iterable[str] | None = None, limit: int | None = None,
                  port: int | None = None, on_ready: Callable[[str], None] | None = None) -> None:
    """`chronic serve`: check prefect.yaml, then serve it on a Prefect server until Ctrl-C or SIGTERM.

    The server is the one PREFECT_API_URL names, else a local one that `ensure_server` starts and stops.
    `on_ready(api_url)` runs once the server is up (e.g. to print where the UI is).
    """
    specs = select(load_deployments(), names)  # a bad prefect.yaml fails before a server starts
    with ensure_server(settings, port=port) as api_url:
        if on_ready is not None:
            on_ready(api_url)
        serve_all(settings, specs=specs, limit=limit)


# -- a local Prefect server ----------------------------------------------------------------------------------------


def prefect_home(settings: Settings) -> Path:
    """PREFECT_HOME of the server `ensure_server` starts: its SQLite database and log live here."""
    return settings.data_dir.resolve() / "prefect"


def configured_api_url() -> str | None:
    """The Prefect API URL from the environment or the active Prefect profile (None: Prefect would go ephemeral)."""
    from prefect.settings import get_current_settings

    return get_current_settings().api.url or None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _healthy(api_url: str) -> bool:
    import httpx

    try:
        r = httpx.get(f"{api_url}/health", timeout=2.0)
    except httpx.HTTPError:
        return False
    return r.status_code == 200


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextlib.contextmanager
def ensure_server(settings: Settings, *, port: int | None = None, host: str = "127.0.0.1",
                  timeout: float = 120.0) -> Iterator[str]:
    """A Prefect API with a scheduler for the duration of the block; yields its URL.

    If PREFECT_API_URL is set (environment or Prefect profile), that server is used as is. Otherwise this starts
    `prefect server start --host HOST --port PORT` (a free port by default) as a subprocess. The subprocess gets
    PREFECT_HOME = DATA_DIR/prefect and writes its log to DATA_DIR/prefect/server.log. Its analytics are off unless
    PREFECT_SERVER_ANALYTICS_ENABLED says otherwise. The block waits up to
    `timeout` seconds for GET /api/health. Inside it, PREFECT_API_URL points at the server, both in this process's
    Prefect settings and in os.environ for child processes. On exit the server gets SIGTERM, then SIGKILL after 20 s.
    """
    existing = configured_api_url()
    if existing:
        yield existing
        return

    from prefect.settings import PREFECT_API_URL, temporary_settings

    home = prefect_home(settings)
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port(host)
    api_url = f"http://{host}:{port}/api"
    env = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # a health-data server does not phone home unless asked
           **os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_API_HOST": host,
           "PREFECT_SERVER_API_PORT": str(port)}
    env.pop("PREFECT_API_URL", None)
    log_path = home / "server.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)],
            env=env, cwd=home, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() reaches the server's children too
        )
    try:
        deadline = time.monotonic() + timeout
        while not _healthy(api_url):
            if proc.poll() is not None:
                raise RuntimeError(f"prefect server exited with code {proc.returncode}; {log_path}:\n"
                                   + _log_tail(log_path))
            if time.monotonic() > deadline:
                raise TimeoutError(f"prefect server at {api_url} not healthy after {timeout:.0f} s; {log_path}:\n"
                                   + _log_tail(log_path))
            time.sleep(0.5)
        old_env = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = api_url
        try:
            with temporary_settings(updates={PREFECT_API_URL: api_url}):
                yield api_url
        finally:
            if old_env is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = old_env
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGTERM the server's process group, SIGKILL it if it is still there after `grace` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
