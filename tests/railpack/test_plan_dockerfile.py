"""Plan → Dockerfile: the same steps, caches and secrets as the LLB rendering."""

from __future__ import annotations

import base64
import re

from starforge_dag.railpack import generate_plan
from starforge_dag.railpack.dockerfile import plan_to_dockerfile


def test_shell_app_dockerfile_on_local_images(fixture_app) -> None:
    plan = generate_plan(fixture_app("shell-busybox")).plan
    text = plan_to_dockerfile(plan, builder_image="local/busybox:1", runtime_image="local/busybox:1")
    assert text.startswith(
        "FROM local/busybox:1 AS packages-mise\nWORKDIR /app\n\nFROM packages-mise AS build\nCOPY . /app\n"
    )
    assert "RUN sh -c 'chmod +x start.sh'" in text
    final = text.rsplit("\n\n", 1)[1]
    assert final.splitlines()[:3] == ["FROM local/busybox:1", "WORKDIR /app", "COPY --from=build /app /app"]
    assert final.rstrip().endswith('CMD ["/bin/sh", "-c", "sh start.sh"]')


def test_stages_come_before_their_users_and_mounts_are_declared(fixture_app) -> None:
    plan = generate_plan(fixture_app("node-npm"), env={"NPM_TOKEN": "tok_value_123"}).plan
    text = plan_to_dockerfile(plan)
    stages = re.findall(r"^FROM \S+ AS (\S+)$", text, flags=re.M)
    assert [s for s in stages if not s.startswith("filtered-")] == [
        "packages-apt-runtime",
        "packages-mise",
        "install",
        "build",
    ]
    assert stages.index("build") < stages.index(next(s for s in stages if s.startswith("filtered-")))
    npm_ci = next(line for line in text.splitlines() if line.endswith("npm install'"))
    assert "--mount=type=cache,id=npm-install,target=/root/.npm,sharing=shared" in npm_ci
    assert "--mount=type=secret,id=NPM_TOKEN" in npm_ci
    assert "tok_value_123" not in text


def test_assets_survive_quoting(fixture_app) -> None:
    plan = generate_plan(fixture_app("node-cra")).plan
    text = plan_to_dockerfile(plan)
    encoded = re.search(r"echo (\S+) \| base64 -d > /Caddyfile", text).group(1)
    assert base64.b64decode(encoded).decode() == plan.step("caddy").assets["Caddyfile"]


def test_excludes_use_a_throwaway_stage(fixture_app) -> None:
    text = plan_to_dockerfile(generate_plan(fixture_app("rust-cargo")).plan)
    filtered = re.search(r"^FROM build AS (filtered-\d+)\nRUN rm -rf /app/target$", text, flags=re.M)
    assert filtered
    assert f"COPY --from={filtered.group(1)} /app /app" in text
