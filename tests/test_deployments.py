"""prefect.yaml: every deployment loads, `prefect deploy` accepts the file, and scheduled runs execute.

The slow tests share one real Prefect server started by `chronic.deployments.ensure_server`, the same server
`chronic serve` starts. `prefect_test_harness` is not used: its server is ephemeral (PREFECT__SERVER_EPHEMERAL=1), so
the scheduler service never runs there, and these tests are about schedules.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from chronic.deployments import (
    DEFAULT_PROJECT,
    DeploymentError,
    build_deployments,
    ensure_server,
    load_deployments,
    resolve_parameters,
    serve_all,
)
from chronic.settings import Settings
from tests.archive_helpers import table, write_csv

REPO = DEFAULT_PROJECT.parent
ROW = "P1,C01,k,2024-03-05T08:00:00+08:00,29463-7,70,kg"

#: The schedules the issue asks for (UTC).
EXPECTED = {
    "ingest-hourly": ("ingest", "0 * * * *"),
    "score-nightly": ("score", "0 2 * * *"),
    "followup-nightly": ("followup", "30 2 * * *"),
    "train-monthly": ("train", "0 3 1 * *"),
    "export-weekly": ("export", "0 5 * * 1"),
    "demo": ("demo", None),
}


def _declared_names() -> list[str]:
    doc = yaml.safe_load(DEFAULT_PROJECT.read_text())
    return [d["name"] for d in doc["deployments"]]


@pytest.fixture(scope="module")
def specs():
    return {s.name: s for s in load_deployments()}


# -- the project file ----------------------------------------------------------------------------------------------


def test_project_file_declares_the_schedules():
    specs = load_deployments(load_flows=False)
    assert {s.name: s.cron for s in specs} == {name: cron for name, (_, cron) in EXPECTED.items()}
    assert {s.timezone for s in specs} == {"UTC"}
    assert specs[0].parameters == {"paths": ["chronic-data/drop"]}


def test_project_file_is_what_prefect_deploy_reads():
    """Prefect's own model of prefect.yaml accepts the file; every deployment targets the process pool."""
    from prefect.cli.deploy._models import PrefectYamlModel

    doc = yaml.safe_load(DEFAULT_PROJECT.read_text())
    model = PrefectYamlModel.model_validate(doc)
    assert [d.name for d in model.deployments] == list(EXPECTED)
    assert {d.work_pool.name for d in model.deployments} == {"chronic-process"}
    assert model.pull == [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $CHRONIC_REPO }}"}}]


@pytest.mark.parametrize("name", _declared_names())
def test_every_deployment_loads(specs, name: str):
    """The entrypoint is the named Prefect flow, the cron is valid and the parameters fit the flow's signature."""
    from prefect import Flow

    spec = specs[name]
    flow_name, cron = EXPECTED[name]
    assert isinstance(spec.flow, Flow) and spec.flow.name == flow_name
    assert spec.cron == cron
    schema = spec.flow.parameters
    assert set(spec.parameters) <= set(schema.properties)
    assert set(schema.required or []) <= set(spec.parameters)
    assert "data_dir" in schema.properties  # chronic serve fills it from the settings
    spec.flow.validate_parameters(resolve_parameters(spec, Settings(data_dir=Path("/tmp/chronic-x"))))


TINY_FLOW = '''
from prefect import flow

@flow(name="tiny")
def tiny(n: int, data_dir: str | None = None) -> int:
    return n

not_a_flow = 3
'''


def _project(tmp_path: Path, **deployment) -> Path:
    (tmp_path / "tiny.py").write_text(TINY_FLOW)
    entry = {"name": "bad-one", "entrypoint": "tiny.py:tiny", "parameters": {"n": 1},
             "schedules": [{"cron": "0 * * * *", "timezone": "UTC"}], **deployment}
    path = tmp_path / "prefect.yaml"
    path.write_text(yaml.safe_dump({"deployments": [entry]}))
    return path


@pytest.mark.parametrize("change, message", [
    ({"schedules": [{"cron": "61 * * * *"}]}, "invalid cron schedule '61 * * * *'"),
    ({"schedules": [{"cron": "0 * * * *", "timezone": "Mars/Olympus"}]}, "invalid cron schedule"),
    ({"schedules": [{"interval": 60}]}, "must be a `cron` schedule"),
    ({"entrypoint": "missing.py:tiny"}, "no such file"),
    ({"entrypoint": "tiny.py:nope"}, "does not load"),
    ({"entrypoint": "tiny.py:not_a_flow"}, "is not a flow"),
    ({"entrypoint": None}, "needs an `entrypoint`"),
    ({"parameters": {"n": 1, "m": 2}}, "['m'] are not parameters of flow 'tiny'"),
    ({"parameters": {}}, "requires parameters ['n']"),
    ({"parameters": {"n": "many"}}, "parameters do not fit flow 'tiny'"),
])
def test_bad_declarations_name_the_deployment(tmp_path: Path, change: dict, message: str):
    with pytest.raises(DeploymentError) as info:
        load_deployments(_project(tmp_path, **change))
    assert str(info.value).startswith("deployment 'bad-one': ") and message in str(info.value)


def test_a_good_tiny_project_loads(tmp_path: Path):
    [spec] = load_deployments(_project(tmp_path))
    assert (spec.full_name, spec.cron, spec.parameters) == ("tiny/bad-one", "0 * * * *", {"n": 1})


def test_parameters_follow_the_data_dir(specs, tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "elsewhere")
    params = resolve_parameters(specs["ingest-hourly"], settings)
    drop = settings.data_dir.resolve() / "drop"
    assert params == {"paths": [str(drop)], "data_dir": str(settings.data_dir.resolve())}
    assert drop.is_dir()  # an empty drop folder ingests nothing instead of failing
    assert resolve_parameters(specs["train-monthly"], settings) == {
        "mode": "incident", "auto_promote": True, "data_dir": str(settings.data_dir.resolve())}


def test_select_by_deployment_or_flow_name(specs):
    from chronic.deployments import select

    everything = list(specs.values())
    assert select(everything, None) == everything
    chosen = select(everything, ["ingest/ingest-hourly", "train-monthly", "ingest-hourly"])
    assert [s.name for s in chosen] == ["ingest-hourly", "train-monthly"]
    with pytest.raises(DeploymentError, match="no deployment named nope"):
        select(everything, ["nope"])


# -- scheduled runs on a real local Prefect server -----------------------------------------------------------------


@pytest.fixture(scope="module")
def local_server(tmp_path_factory):
    """`ensure_server` for a data dir of its own: starts `prefect server start` since no API URL is configured."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    data = tmp_path_factory.mktemp("serve")
    saved = os.environ.pop("PREFECT_API_URL", None)
    try:
        with temporary_settings(restore_defaults={PREFECT_API_URL}):
            settings = Settings(data_dir=data)
            with ensure_server(settings) as api_url:
                yield settings, api_url
            assert not _healthy(api_url), "the server outlived ensure_server"
    finally:
        if saved is not None:
            os.environ["PREFECT_API_URL"] = saved


def _healthy(api_url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{api_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _runs_of(client, deployment_id):
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))


@pytest.mark.slow
def test_local_server_keeps_its_state_in_the_data_dir(local_server):
    settings, api_url = local_server
    assert api_url.startswith("http://127.0.0.1:") and _healthy(api_url)
    assert (settings.data_dir / "prefect" / "prefect.db").is_file()
    assert os.environ["PREFECT_API_URL"] == api_url


@pytest.mark.slow
def test_the_server_schedules_every_cron_deployment(local_server, specs, tmp_path: Path):
    """Registered as `chronic serve` registers them, each cron deployment gets runs at its cron times."""
    from prefect import get_client
    from prefect.server.schemas.schedules import CronSchedule

    before = datetime.now(UTC)
    deployments = build_deployments(Settings(data_dir=tmp_path / "data"), list(specs.values()))
    ids = {d.name: d.apply() for d in deployments}
    want = {name: s.cron for name, s in specs.items() if s.cron}
    with get_client(sync_client=True) as client:
        deadline = time.monotonic() + 90
        while True:
            runs = {name: _runs_of(client, ids[name]) for name in ids}
            if all(runs[name] for name in want) or time.monotonic() > deadline:
                break
            time.sleep(1)
    assert runs["demo"] == []
    for name, cron in want.items():
        assert runs[name], f"{name}: the scheduler made no runs"
        times = sorted(r.expected_start_time for r in runs[name])
        expected = asyncio.run(CronSchedule(cron=cron, timezone="UTC").get_dates(n=len(times), start=before))
        assert times == expected, name
        assert all(r.state.is_scheduled() and r.auto_scheduled for r in runs[name])


@pytest.mark.slow
def test_a_scheduled_run_executes(local_server, specs, tmp_path: Path):
    """The ingest-hourly cron yields a due run (backfilled from an hour ago); serve_all runs it into the archive."""
    from prefect import get_client

    settings = Settings(data_dir=tmp_path / "data")
    write_csv(settings.data_dir / "drop" / "d.csv", [ROW])
    spec = specs["ingest-hourly"]
    [deployment] = build_deployments(settings, [spec])
    deployment_id = deployment.apply()
    now = datetime.now(UTC)
    with get_client(sync_client=True) as client:
        # The server's own scheduling code, on the deployment's own cron: the run at the last top of the hour.
        r = client._client.post(f"/deployments/{deployment_id}/schedule",
                                json={"start_time": (now - timedelta(hours=1)).isoformat(),
                                      "end_time": now.isoformat(), "max_runs": 1})
        r.raise_for_status()
        [due] = [run for run in _runs_of(client, deployment_id) if run.expected_start_time <= now]
        assert due.state.is_scheduled() and due.auto_scheduled
        assert due.expected_start_time == now.replace(minute=0, second=0, microsecond=0)
        assert due.parameters["paths"] == [str(settings.data_dir.resolve() / "drop")]

        serve_all(settings, specs=[spec], run_once=True, pause_on_shutdown=False)

        done = client.read_flow_run(due.id)
    assert done.state.is_completed(), done.state
    assert table(settings.db_path, "observation").height == 1


@pytest.mark.slow
def test_prefect_deploy_and_a_process_worker_run_the_project(local_server, specs, tmp_path: Path):
    """`prefect deploy --all` registers prefect.yaml on the server; a `chronic-process` worker runs a deployment."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    _, api_url = local_server
    env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_HOME": str(tmp_path / "client-home")}
    env.pop("CHRONIC_DATA_DIR", None)
    env.pop("CHRONIC_REPO", None)  # unset at deploy time: the pull step keeps the placeholder for the worker
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name="chronic-process", type="process"), overwrite=True)
    digest = hashlib.sha256(DEFAULT_PROJECT.read_bytes()).hexdigest()
    out = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    assert hashlib.sha256(DEFAULT_PROJECT.read_bytes()).hexdigest() == digest  # deploy did not rewrite the file

    with get_client(sync_client=True) as client:
        deployed = {name: client.read_deployment_by_name(spec.full_name) for name, spec in specs.items()}
        for name, d in deployed.items():
            assert d.work_pool_name == "chronic-process", name
            assert [s.schedule.cron for s in d.schedules] == ([specs[name].cron] if specs[name].cron else []), name
            assert d.parameters == specs[name].parameters, name
            assert d.pull_steps == [{"prefect.deployments.steps.set_working_directory":
                                     {"directory": "{{ $CHRONIC_REPO }}"}}], name
            client.pause_deployment(d.id)  # only the run below may reach the worker

        data = tmp_path / "data"
        write_csv(tmp_path / "drop" / "d.csv", [ROW])
        run = client.create_flow_run_from_deployment(
            deployed["ingest-hourly"].id, parameters={"paths": [str(tmp_path / "drop")], "data_dir": str(data)})
        # Started outside the checkout: only the pull step (cd $CHRONIC_REPO) makes flows/ingest.py resolvable.
        worker = subprocess.run(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", "chronic-process", "--run-once",
             "--install-policy", "never"],
            cwd=tmp_path, env={**env, "CHRONIC_REPO": str(REPO)}, capture_output=True, text=True, timeout=180)
        done = client.read_flow_run(run.id)
    assert done.state.is_completed(), (done.state, worker.stdout[-3000:], worker.stderr[-3000:])
    assert table(data / "chronic.duckdb", "observation").height == 1
