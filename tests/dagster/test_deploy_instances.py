"""The run-worker instance files load into a DagsterInstance; the pod-per-build one makes the Job spec we document."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from starforge_dag.dev.instance import INSTANCE_FILES, PROJECT_ROOT
from starforge_dag.jobs import BUILD_ID_TAG, build_job
from starforge_dag.workers import (
    WorkerConfigError,
    WorkerWatchingCeleryRunLauncher,
    check_visibility_timeout,
    worker_app,
)

pytestmark = pytest.mark.integration

KUBERNETES = PROJECT_ROOT / "deploy" / "kubernetes"
PG_SECRET = "postgresql://starforge:s3cret-password@db.internal/dagster"


class KubernetesApi:
    """The slice of the Kubernetes API a run launcher calls to create a Job: records each Job body it is sent."""

    def __init__(self) -> None:
        self.jobs: list[tuple[str, dict[str, Any]]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                parts = self.path.split("/")  # /apis/batch/v1/namespaces/<ns>/jobs
                if parts[1:4] != ["apis", "batch", "v1"] or parts[-1] != "jobs":
                    self.send_error(404)
                    return
                api.jobs.append((parts[5], body))
                answer = json.dumps(body).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def kubeconfig(self, path: Path) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "test", "cluster": {"server": self.url}}],
            "users": [{"name": "test", "user": {"token": "kubeconfig-token"}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
            "current-context": "test",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def kubernetes_api() -> Iterator[KubernetesApi]:
    api = KubernetesApi()
    yield api
    api.close()


def dagster_home(tmp_path: Path, source: Path, launcher_overrides: dict[str, Any] | None = None) -> Path:
    config = yaml.safe_load(source.read_text())
    if launcher_overrides:
        config["run_launcher"]["config"].update(launcher_overrides)
    home = tmp_path / "dagster-home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home


def test_celery_instance_gives_workers_and_daemon_one_app_that_keeps_runs_safe(
    tmp_path: Path, dagster_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STARFORGE_DAGSTER_PG_URL", dagster_postgres_url)
    monkeypatch.setenv("STARFORGE_CELERY_BROKER_URL", "redis://127.0.0.1:6399/3")
    with dg.DagsterInstance.from_config(str(dagster_home(tmp_path, INSTANCE_FILES["celery"]))) as instance:
        assert isinstance(instance.run_launcher, WorkerWatchingCeleryRunLauncher)
        app = worker_app(instance)
        conf = app.conf
        assert (conf.broker_url, conf.result_backend) == ("redis://127.0.0.1:6399/3",) * 2
        assert conf.task_acks_late and conf.worker_prefetch_multiplier == 1 and conf.worker_max_tasks_per_child == 1
        assert {"execute_job", "resume_job"} <= set(app.tasks)
        assert instance.run_monitoring_start_timeout_seconds >= conf.broker_transport_options["visibility_timeout"]
        check_visibility_timeout(app, build_timeout_s=3600)
        with pytest.raises(WorkerConfigError, match="visibility_timeout"):
            check_visibility_timeout(app, build_timeout_s=7200)


def test_celery_instance_differs_from_the_postgres_one_in_the_launcher_and_start_timeout() -> None:
    postgres = yaml.safe_load(INSTANCE_FILES["postgres"].read_text())
    celery = yaml.safe_load(INSTANCE_FILES["celery"].read_text())
    assert celery.pop("run_launcher")["class"] == "WorkerWatchingCeleryRunLauncher"
    assert celery["run_monitoring"].pop("start_timeout_seconds") > postgres["run_monitoring"].pop(
        "start_timeout_seconds"
    )
    assert celery == postgres


def test_a_worker_refuses_an_instance_without_the_celery_launcher(
    tmp_path: Path, dagster_postgres_url: str, monkeypatch
):
    monkeypatch.setenv("STARFORGE_DAGSTER_PG_URL", dagster_postgres_url)
    with dg.DagsterInstance.from_config(str(dagster_home(tmp_path, INSTANCE_FILES["postgres"]))) as instance:
        with pytest.raises(WorkerConfigError, match="dagster-celery.yaml"):
            worker_app(instance)


def test_pod_per_build_instance_creates_a_job_with_secret_references_only(
    tmp_path: Path, dagster_postgres_url: str, monkeypatch: pytest.MonkeyPatch, kubernetes_api: KubernetesApi
) -> None:
    monkeypatch.setenv("STARFORGE_DAGSTER_PG_URL", dagster_postgres_url)
    monkeypatch.setenv("STARFORGE_IMAGE", "registry.example.com/starforge:0.1.0")
    kubeconfig = kubernetes_api.kubeconfig(tmp_path / "kubeconfig")
    overrides = {"load_incluster_config": False, "kubeconfig_file": str(kubeconfig)}
    home = dagster_home(tmp_path, KUBERNETES / "dagster-k8s.yaml", overrides)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_launcher).__name__ == "K8sRunLauncher"
        origin = dg.reconstructable(build_job).get_python_origin()
        run = instance.create_run_for_job(
            build_job,
            run_config={"ops": {"load_build": {"config": {"build_id": 7}}}},
            tags={BUILD_ID_TAG: "7"},
            job_code_origin=origin,
        )
        instance.launch_run(run.run_id, workspace=None)  # type: ignore[arg-type]

    [(namespace, job)] = kubernetes_api.jobs
    assert namespace == "starforge"
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "registry.example.com/starforge:0.1.0"
    assert container["envFrom"] == [
        {"configMapRef": {"name": "starforge-settings"}},
        {"secretRef": {"name": "starforge-secrets"}},
    ]
    assert container["resources"] == {"limits": {"memory": "2Gi"}, "requests": {"cpu": "500m", "memory": "768Mi"}}
    assert pod["serviceAccountName"] == "starforge-run"
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels["app.kubernetes.io/part-of"] == "starforge"
        assert labels["app.kubernetes.io/component"] == "build-run"
        assert labels["dagster/run-id"] == run.run_id
    assert container["args"][:3] == ["dagster", "api", "execute_run"]
    spec = json.dumps(job)
    assert dagster_postgres_url not in spec and "s3cret" not in spec and "kubeconfig-token" not in spec
    assert all("value" not in e or not e["name"].startswith("STARFORGE_") for e in container.get("env", []))


def test_helm_values_point_every_process_at_the_secret_by_name_and_match_the_instance_file() -> None:
    values = yaml.safe_load((KUBERNETES / "values.yaml").read_text())
    celery = yaml.safe_load(INSTANCE_FILES["celery"].read_text())
    custom = values["runLauncher"]["config"]["customRunLauncher"]
    assert (custom["module"], custom["class"]) == (celery["run_launcher"]["module"], celery["run_launcher"]["class"])
    assert custom["config"]["config_source"]["broker_transport_options"]["visibility_timeout"] == 7200
    secret = {"name": "starforge-secrets"}
    assert secret in values["dagsterWebserver"]["envSecrets"] and secret in values["dagsterDaemon"]["envSecrets"]
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert secret in deployment["envSecrets"] and "starforge_dag.definitions" in deployment["dagsterApiGrpcArgs"]
    assert values["postgresql"]["enabled"] is False and values["redis"]["enabled"] is False
    assert "postgresqlPassword" not in values["postgresql"]

    workers = yaml.safe_load((KUBERNETES / "workers.yaml").read_text())
    pod = workers["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= 3600 + 60
    [container] = pod["containers"]
    assert {"secretRef": secret} in container["envFrom"]
    assert not [e for e in container["env"] if "value" in e and e["name"].startswith("STARFORGE_")]
