"""The HTTP API: the GitHub webhook receiver, the build, log, app and desired-state endpoints, and build pages."""

from __future__ import annotations

import logging

import uvicorn
from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.staticfiles import StaticFiles

from starforge_dag.core.errors import IllegalTransition
from starforge_dag.settings import Settings
from starforge_dag.store import NotFound, open_store

from .apps import router as app_management_router
from .builds import apps_router, builds_router
from .deps import SettingsDep
from .desired import router as desired_router
from .notifications import router as notifications_router
from .pages import STATIC_DIR, STATIC_PATH
from .pages import router as pages_router
from .previews import router as previews_router
from .schemas import Health, Problem
from .tokens import router as tokens_router
from .variables import router as variables_router
from .webhooks import router as webhooks_router

log = logging.getLogger(__name__)

TAGS = [
    {"name": "webhooks", "description": "GitHub deliveries, authenticated by X-Hub-Signature-256."},
    {"name": "builds", "description": "Build status, phases, logs and cancellation."},
    {
        "name": "apps",
        "description": "Apps (registration, settings, removal), their build-time variables and secrets (a secret's "
        "value is write-only), manual builds, the desired state and its change feed the deployer reads, rollback "
        "and pins; workspace tokens (made by the platform) and a workspace's signed notifications (webhook endpoints "
        "and their delivery log).",
    },
    {"name": "health", "description": "Liveness with a database check."},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Settings left as None are read from the environment on the first request, not at import."""
    app = FastAPI(
        title="Starforge",
        version="0.1.0",
        summary="Build pipeline of the Starform PaaS: git push in, verified image and desired state out.",
        openapi_tags=TAGS,
    )
    app.state.settings = settings
    app.include_router(webhooks_router)
    app.include_router(builds_router)
    app.include_router(apps_router)
    app.include_router(desired_router)
    app.include_router(previews_router)
    app.include_router(app_management_router)  # after the /apps/{app:path}/… routes, which take `app` alone too
    app.include_router(variables_router)
    app.include_router(pages_router)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="page-static")
    app.include_router(tokens_router)
    app.include_router(notifications_router)
    app.add_api_route(
        "/healthz",
        healthz,
        methods=["GET"],
        response_model=Health,
        tags=["health"],
        responses={503: {"model": Problem}},
    )
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(IllegalTransition, _conflict)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(Exception, _internal)
    return app


def healthz(settings: SettingsDep) -> Health:
    """Healthy means the build store answers a query (opening it may be what fails)."""
    try:
        open_store(settings.resolved_database_url).ping()
    except Exception:
        log.exception("health check: database did not answer")
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "database unavailable") from None
    return Health(status="ok", database="ok")


async def _not_found(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_404_NOT_FOUND)


async def _conflict(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_409_CONFLICT)


async def _invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 without the offending input: a malformed body may hold a secret's value."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [{k: v for k, v in e.items() if k in ("type", "loc", "msg")} for e in errors]
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _internal(_request: Request, exc: Exception) -> JSONResponse:
    """Never leak internals (URLs, secrets) in an answer; the log has the traceback."""
    log.error("unhandled error", exc_info=exc)
    return JSONResponse({"detail": "internal error"}, status_code=status.HTTP_500_INTERNAL_SERVER_ERROR)


def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the API under uvicorn; `starforge api` calls this."""
    uvicorn.run(create_app(), host=host, port=port, proxy_headers=True)
