"""Who asked for a change, as the record shows it: `api`, or `api:<by>` when the caller names itself."""

from __future__ import annotations

from fastapi import HTTPException, status

from starforge_dag.core.inputs import InvalidInput, check_text


def request_actor(by: str | None) -> str:
    if by is None:
        return "api"
    try:
        return f"api:{check_text(by, 'by', max_chars=100)}"
    except InvalidInput as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
