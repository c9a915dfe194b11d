"""A GitHub emulator: the REST endpoints a GitHub App uses, App webhooks, and a private git smart-HTTP remote.

It is a real HTTP server (Starlette under uvicorn on a free port). App calls are authenticated with
RS256 JWTs checked against the App's public key, installation calls with the tokens it minted
(they expire and can be revoked); git clones need `x-access-token:<token>` Basic auth for private
repositories. Answers carry GitHub's shapes and `x-ratelimit-*` headers, and scripted faults (5xx,
403/429 rate limits, slow answers) hit a chosen fraction of API calls. Webhooks are signed like
GitHub's, and a chosen fraction of them is dropped (recorded as failed deliveries, redeliverable).
"""

from .auth import new_private_key
from .checks import EmuCheckSuite
from .emulator import GitHubEmulator
from .faults import Faults
from .records import EmuDelivery, EmuDeployment, EmuInstallation, EmuRepo, EmuToken, RecordedStatus
from .served import ServedApp

__all__ = [
    "EmuCheckSuite",
    "EmuDelivery",
    "EmuDeployment",
    "EmuInstallation",
    "EmuRepo",
    "EmuToken",
    "Faults",
    "GitHubEmulator",
    "RecordedStatus",
    "ServedApp",
    "new_private_key",
]
