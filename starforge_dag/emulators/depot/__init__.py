"""A Depot emulator: Depot's gRPC API with its auth and status codes, and mTLS BuildKit endpoints that really build.

Services (bearer token in `authorization` metadata on every call):
    depot.core.v1.ProjectService    organization token
    depot.build.v1.BuildService     organization token; FinishBuild also takes that build's token
    depot.core.v1.BuildService      GetBuild: organization token or that build's token
    depot.buildkit.v1.BuildKitService  the build token returned by CreateBuild
Missing or unknown tokens answer UNAUTHENTICATED, a token of another organization or build
PERMISSION_DENIED, unknown projects and builds NOT_FOUND, malformed requests INVALID_ARGUMENT,
calls on an ended build FAILED_PRECONDITION. A build with no health report for `health_timeout_s`
(read when it is created and at each report) expires.

Each build gets its own machine on first GetEndpoint: a fresh CA, a server certificate for
`server_name` and a client certificate, and a gRPC server on 127.0.0.1 that requires that client
certificate and proxies BuildKit's Control API to the local dockerd's BuildKit. Solve is
intercepted the way Depot's builders behave: an `image` exporter (from the repeated `Exporters`
when present, else from `Exporter`/`ExporterAttrs`) is run as dockerd's `moby` exporter with the
same names; with `push=true` every name is pushed through the Engine API and the response carries
the registry's manifest digest as `containerimage.digest` and the image ID as
`containerimage.config.digest`. A `containerimage.config` attribute (which `moby` ignores) is
applied with a metadata-only Dockerfile on top of the result. Status streams passing through are
read to answer GetBuildSteps/GetBuildStepLogs.

Registry credentials: like Depot's builders, a push asks the client's session auth service
(`moby.filesync.v1.Auth/Credentials` for the registry host). The client's `Control.Session`
stream ends in the emulator, which dials it with its own gRPC channel and hands dockerd the
same session (`POST /session` with the client's headers), relaying dockerd's calls to the
client. Without a session, or when it answers anonymous, the emulator's own `registry_auth`
(one `RegistryAuth`, or a mapping host -> RegistryAuth) is used; otherwise the push is
anonymous. Each SolveRecord says where its credentials came from (never the secret).
ResetProject is recorded but does not prune the shared daemon's cache.
"""

from .faults import Faults
from .records import BuildRecord, ProjectRecord, SolveRecord, StepRecord
from .server import DepotEmulator
from .solve import solve_exporters

__all__ = ["BuildRecord", "DepotEmulator", "Faults", "ProjectRecord", "SolveRecord", "StepRecord", "solve_exporters"]
