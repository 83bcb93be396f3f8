"""The local sandbox's own admin API (`/_sandbox/...`), for the demo: not Codat's, so it is not
in CodatClient, but it is HTTP, so it lives here, on the one client factory and Codat's auth.

Calls are made once, without retries: the sandbox runs on loopback, and the demo stops with the
reason if it does not answer. Errors name the call and the status, never the key.
"""

from __future__ import annotations

from typing import Any

import httpx

from destination_codat_expenses import jsonwire
from destination_codat_expenses.codat.client import basic_auth
from destination_codat_expenses.codat.http import answers, http_client
from destination_codat_expenses.errors import FatalAPIError, RetriableAPIError

HEALTH_PATH = "/_sandbox/healthz"


class SandboxAdmin:
    def __init__(self, base_url: str, api_key: str, timeout_s: float = 30.0) -> None:
        self.base_url, self.timeout_s = base_url, timeout_s
        self.headers = {"Authorization": basic_auth(api_key)}

    def is_up(self) -> bool:
        return answers(self.base_url, HEALTH_PATH, self.headers)

    def register_webhook(self, url: str, secret: str) -> None:
        """Deliver the sandbox's sync webhooks to `url`, signed with `secret`."""
        self._call("POST", "/_sandbox/webhooks", {"url": url, "secret": secret})

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_sandbox/webhooks/deliveries")

    def ground_truth(self) -> dict[str, list[dict[str, Any]]]:
        """What the sandbox's books hold, per company: each written entry and its `writes`."""
        return self._call("GET", "/_sandbox/ground-truth")

    def _call(self, method: str, path: str, body: dict | None = None) -> Any:
        try:
            with http_client(self.base_url) as http:
                answer = http.request(
                    method, path, json=body, headers=self.headers, timeout=self.timeout_s
                )
        except httpx.TransportError as error:
            raise RetriableAPIError(
                f"The sandbox could not be reached ({type(error).__name__}).",
                method=method,
                path=path,
            ) from None
        if answer.status_code >= 400:
            raise FatalAPIError(
                f"The sandbox answered {answer.status_code} to {method} {path}.",
                status=answer.status_code,
                method=method,
                path=path,
            )
        return jsonwire.loads(answer.content) if answer.content else None
