"""The build job's ops: load → clone → inspect → (Dockerfile | Railpack) → submit → await → publish."""

import sys
from pathlib import Path

import dagster as dg
from pydantic import BaseModel, Field

from ..assets import app_image, app_partition_key, change_metadata
from ..buildkit.dockerargs import dockerfile_variables
from ..core.errors import BuildError, UserBuildError
from ..core.models import BuildRequest, BuildResult, BuildSpec, BuildTicket, ImageRef, ProgressLine
from ..core.states import BuildState
from ..git.checkout import SourceTree, resolve_inside
from ..github.clone import clone_with_app
from ..resources.build_service import BuildService
from ..resources.build_store import BuildStoreResource
from ..resources.git import GitResource
from ..resources.github import GitHubAppResource
from ..resources.log_store import LogStoreResource
from ..resources.planner import PlannerResource
from ..resources.registry import RegistryResource
from ..store import SuccessOutcome
from ..variables.delivery import BuildVariables
from .backend_build import cancel_check, result_metadata, tag_backend_build
from .failures import TRANSIENT_RETRY, failing_build
from .phases import STOPPED, actor, advance, db, stop_run


class LoadBuildConfig(dg.Config):
    build_id: int = Field(description="Id of the build (a row of the builds table) this run carries out.")


class PlannedSource(BaseModel):
    """A checkout plus the image it should become; what both frontends start from."""

    request: BuildRequest
    source: SourceTree
    dockerfile: str | None = None


@dg.op(tags={"kind": "queue"})
def load_build(
    context: dg.OpExecutionContext, config: LoadBuildConfig, build_store: BuildStoreResource
) -> BuildRequest:
    """Bind this run to its build record, so status and failures land on the right row."""
    build = db(build_store, lambda s: s.get_build(config.build_id), "load build")
    if build.status.terminal and context.run.parent_run_id is None:
        if build.status in STOPPED:  # canceled or superseded after the sensor claimed it
            stop_run(context, build.id, build.status, build.error)
        raise dg.Failure(f"build {build.id} is already {build.status.value}: {build.error or ''}", allow_retries=False)
    build = db(build_store, lambda s: s.attach_run(config.build_id, context.run_id), "attach run")
    app = db(build_store, lambda s: s.get_app_by_id(build.app_id), "load app")
    context.log.info(f"build {build.id}: {app.workspace}/{app.name} {build.ref} at {build.commit_sha[:12]}")
    return BuildRequest(
        build_id=build.id,
        app_id=app.id,
        workspace=app.workspace,
        app=app.name,
        repo_url=app.repo_url,
        ref=build.ref,
        commit_sha=build.commit_sha,
        root_dir=app.root_dir,
        dockerfile_path=app.dockerfile_path,
        target=app.target,
        trigger=build.trigger,
        delivery_id=build.delivery_id,
        no_cache=build.no_cache,
    )


@dg.op(retry_policy=TRANSIENT_RETRY)
def clone_source(
    context: dg.OpExecutionContext,
    request: BuildRequest,
    build_store: BuildStoreResource,
    git: GitResource,
    github: GitHubAppResource,
) -> SourceTree:
    """Fetch exactly the pushed commit (shallow, with submodules) into the build's own directory.

    An app following a GitHub repository clones it by id through the App (private repositories too).
    """
    advance(context, build_store, request.build_id, BuildState.CLONING, f"cloning {request.commit_sha[:12]}")
    with failing_build(context, build_store, request.build_id):
        source = clone_with_app(
            build_store.github(),
            github.app(),
            request.app_id,
            request.repo_url,
            lambda url, auth: git.checkout(
                request.build_id, url, request.commit_sha, request.root_dir, auth_config=auth
            ),
        )
    db(
        build_store,
        lambda s: s.set_commit_time(request.build_id, source.commit_time, source.commit_message, source.commit_author),
        "record the commit",
    )
    context.add_output_metadata(
        {"commit": source.commit_sha, "path": source.path, "submodules": len(source.submodules)}
    )
    return source


@dg.op(
    out={
        "dockerfile_source": dg.Out(PlannedSource, is_required=False, description="The repo has a Dockerfile."),
        "railpack_source": dg.Out(PlannedSource, is_required=False, description="No Dockerfile: plan the build."),
    }
)
def inspect_repo(
    context: dg.OpExecutionContext, request: BuildRequest, source: SourceTree, build_store: BuildStoreResource
):
    """Pick the frontend: the app's Dockerfile (root or configured path) or the Railpack planner."""
    advance(context, build_store, request.build_id, BuildState.PLANNING, "inspecting repository")
    with failing_build(context, build_store, request.build_id):
        app_dir = Path(source.app_dir)
        wanted = request.dockerfile_path or "Dockerfile"
        dockerfile = resolve_inside(
            Path(source.path), str(Path(request.root_dir or ".") / wanted), what="Dockerfile path"
        )
        if request.dockerfile_path and not dockerfile.is_file():
            raise UserBuildError(
                f"the app's Dockerfile path {request.dockerfile_path!r} does not exist in {request.commit_sha[:12]}",
                step="inspect",
            )
    if dockerfile.is_file():
        relative = str(dockerfile.relative_to(app_dir)) if app_dir in dockerfile.parents else str(dockerfile)
        context.log.info(f"Dockerfile found: {relative}")
        yield dg.Output(PlannedSource(request=request, source=source, dockerfile=relative), "dockerfile_source")
    else:
        context.log.info("no Dockerfile: planning with the Railpack-compatible planner")
        yield dg.Output(PlannedSource(request=request, source=source), "railpack_source")


@dg.op
def dockerfile_frontend(
    context: dg.OpExecutionContext,
    planned: PlannedSource,
    registry: RegistryResource,
    build_store: BuildStoreResource,
    log_store: LogStoreResource,
) -> BuildSpec:
    """Build with BuildKit's Dockerfile frontend, context = the app's root directory.

    Plain variables become build args of the ARGs the Dockerfile declares; secrets reach only
    `RUN --mount=type=secret,id=NAME` (their names are in the spec, their values only in `await_build`).
    """
    r = planned.request
    dockerfile = planned.dockerfile or "Dockerfile"
    with failing_build(context, build_store, r.build_id):
        variables = build_store.build_variables(r.build_id)
        text = (Path(planned.source.app_dir) / dockerfile).read_text(errors="replace")  # inspect_repo checked it
        given = dockerfile_variables(text, variables.plain, variables.secret)
    if given.warnings:
        with log_store.writer(r.build_id, masker=variables.masker()) as writer:
            for warning in given.warnings:
                writer.write(ProgressLine(stream="system", text=warning))
                context.log.warning(warning)
    context.add_output_metadata(
        {"build_args": ", ".join(sorted(given.build_args)), "secrets": ", ".join(given.secrets)}
    )
    return BuildSpec(
        build_id=r.build_id,
        context_dir=planned.source.app_dir,
        image=registry.image_for(r.workspace, r.app, r.commit_sha),
        workspace=r.workspace,
        frontend="dockerfile",
        dockerfile=dockerfile,
        build_args=given.build_args,
        target=r.target,
        secrets=given.secrets,
        no_cache=r.no_cache,
    )


@dg.op
def railpack_frontend(
    context: dg.OpExecutionContext,
    planned: PlannedSource,
    registry: RegistryResource,
    planner: PlannerResource,
    build_store: BuildStoreResource,
) -> BuildSpec:
    """Detect the framework, make a Railpack plan and its LLB; the plan shows in the UI."""
    r = planned.request
    with failing_build(context, build_store, r.build_id):
        variables = build_store.build_variables(r.build_id)
        planned_build = planner.plan(
            planned.source.app_dir,
            env=variables.values,
            secret_names=variables.secret.keys(),
            hash_values=variables.fingerprints,
        )
    context.add_output_metadata(
        {
            "providers": ", ".join(planned_build.providers) or "none",
            "start_command": planned_build.start_command or "",
            "plan": dg.MetadataValue.json(planned_build.plan),
            "warnings": "\n".join(planned_build.warnings),
        }
    )
    return BuildSpec(
        build_id=r.build_id,
        context_dir=planned.source.app_dir,
        image=registry.image_for(r.workspace, r.app, r.commit_sha),
        workspace=r.workspace,
        frontend="llb",
        llb_definition=planned_build.definition,
        image_config=planned_build.image_config,
        secrets=planned_build.secrets,
        no_cache=r.no_cache,
    )


@dg.op(retry_policy=TRANSIENT_RETRY)
def submit_build(
    context: dg.OpExecutionContext, specs: list[BuildSpec], build_service: BuildService, build_store: BuildStoreResource
) -> BuildTicket:
    """Hand the spec to the configured backend (Depot, BuildKit or the fake)."""
    spec = specs[0]
    advance(context, build_store, spec.build_id, BuildState.BUILDING, f"building {spec.image.ref} ({spec.frontend})")
    with failing_build(context, build_store, spec.build_id):
        ticket = build_service.builder().submit(spec)
    context.add_output_metadata({"backend": ticket.backend, "ref": ticket.ref, "image": spec.image.ref})
    return ticket


@dg.op(retry_policy=TRANSIENT_RETRY)
def await_build(
    context: dg.OpExecutionContext,
    ticket: BuildTicket,
    build_service: BuildService,
    build_store: BuildStoreResource,
    log_store: LogStoreResource,
) -> BuildResult:
    """Run the build to the end, streaming every line (secrets masked) to the log store and the step's stdout.

    The build's secret values are read here, from the versions it was queued with, and go only to the builder.
    """
    build_id = ticket.spec.build_id
    advance(context, build_store, build_id, BuildState.BUILDING, "waiting for the build")
    pushing = False

    def on_progress(line: ProgressLine) -> None:
        nonlocal pushing
        stored = writer.write(line)
        sys.stdout.write(f"{stored.text}\n")
        if line.stream == "system":
            context.log.debug(stored.text)
        if line.vertex == "push" and not pushing:
            pushing = True
            advance(context, build_store, build_id, BuildState.PUSHING, f"pushing {ticket.spec.image.ref}")

    try:
        with failing_build(context, build_store, build_id, log_store):
            variables = build_store.build_variables(build_id)
            with log_store.writer(build_id, masker=variables.masker()) as writer:
                builder = build_service.builder()
                result = builder.run(
                    ticket,
                    on_progress,
                    should_cancel=cancel_check(build_store, build_id),
                    secrets=_secrets_of(ticket.spec, variables),
                )
    finally:
        tag_backend_build(context, build_store, build_id)
    if not pushing:
        advance(context, build_store, build_id, BuildState.PUSHING, f"pushed {ticket.spec.image.ref}")
    context.add_output_metadata(result_metadata(result))
    return result


def _secrets_of(spec: BuildSpec, variables: BuildVariables) -> dict[str, str]:
    """The values of the spec's secret names: a planned build reads every variable through them, a Dockerfile
    build only its secrets."""
    values = variables.values
    return {name: values[name] for name in spec.secrets if name in values}


@dg.op(retry_policy=TRANSIENT_RETRY, out=dg.Out(int, description="The id of the build that succeeded."))
def publish_image(
    context: dg.OpExecutionContext,
    result: BuildResult,
    source: SourceTree,
    build_store: BuildStoreResource,
    registry: RegistryResource,
):
    """Verify the digest with the registry, then succeed in one transaction: image, desired state, status."""
    build_id = result.build_id
    advance(context, build_store, build_id, BuildState.PUSHING, "verifying the pushed image")
    image = result.image
    with failing_build(context, build_store, build_id):
        if registry.verify_pushes:
            registry_digest = registry.manifest_digest(image)
            if registry_digest != image.digest:
                raise BuildError(
                    f"registry has {registry_digest} for {image.ref}, the build reported {image.digest}", step="verify"
                )
    who, run_id = actor(context), context.run_id
    outcome = db(
        build_store,
        lambda s: s.succeed(build_id, image.ref, image.digest or "", f"image {image.pinned}", who, run_id=run_id),
        "record success",
    )
    build = outcome.build
    if build.status != BuildState.SUCCEEDED:  # asked to stop while pushing: the image is not deployed
        stop_run(context, build_id, build.status, build.error)
    if build.preview:  # a preview moves its own environment; `app_image` is the app's production image
        context.log.info(f"{build.environment} of {build.workspace}/{build.app}: " + _preview_note(outcome, image))
    else:
        context.log.info(_desired_note(outcome, image))
        yield _image_materialization(outcome, image, source)
    yield dg.Output(build_id)


def _preview_note(outcome: SuccessOutcome, image: ImageRef) -> str:
    return f"now {image.pinned}" if outcome.moved else "kept (a newer build got there first, or the PR closed)"


def _desired_note(outcome: SuccessOutcome, image: ImageRef) -> str:
    """Where desired state of the app stands after this build, and why it did not move if it did not."""
    build, moved, desired = outcome.build, outcome.moved, outcome.desired
    return (
        f"desired state of {build.workspace}/{build.app} "
        + (f"now {image.pinned}" if moved else f"kept at {desired.commit_sha[:12] if desired else '?'}")
        + ("" if moved else " (held by a pin)" if build.held_by_pin else " (newer commit)")
    )


def _image_materialization(outcome: SuccessOutcome, image: ImageRef, source: SourceTree) -> dg.AssetMaterialization:
    build, desired = outcome.build, outcome.desired
    return dg.AssetMaterialization(
        asset_key=app_image.key,
        partition=app_partition_key(build.workspace, build.app),
        description=f"{build.workspace}/{build.app} at {source.commit_sha[:12]}",
        metadata={
            "digest": image.digest or "",
            "image": image.ref,
            "pinned": image.pinned,
            "commit": source.commit_sha,
            "build_id": build.id,
            "desired_state_updated": outcome.moved,
            "desired_commit": desired.commit_sha if desired else "",
            **change_metadata(outcome.change, held_by_pin=build.held_by_pin),
        },
    )
