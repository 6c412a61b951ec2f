"""ServiceNow Table API client: keyset sync of incidents and incident updates.

Incidents are read from `GET /api/now/table/incident` in (`sys_updated_on`,
`sys_id`) order. Each page requests the records after the last key seen, with an
encoded query in `sysparm_query` and the page size in `sysparm_limit`. Unlike
`sysparm_offset`, a key does not shift when records change during the sync.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import requests.auth

from connectors.http import BearerAuth, ConnectorClient, PaginationGuard, PaginationLoopError

logger = logging.getLogger(__name__)

INCIDENT_PATH = "/api/now/table/incident"
ORDER_CLAUSE = "ORDERBYsys_updated_on^ORDERBYsys_id"

# Table API values with sysparm_display_value=false: UTC "YYYY-MM-DD HH:MM:SS"
# and 32 hexadecimal characters.
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_SYS_ID = re.compile(r"[0-9a-f]{32}")

IncidentKey = tuple[str, str]


class ServiceNowIncidentPage(NamedTuple):
    """One page of incidents and the key to resume after it.

    `cursor` is the (`sys_updated_on`, `sys_id`) of the page's last incident.
    """

    incidents: list[dict[str, Any]]
    cursor: IncidentKey


def incident_keyset_query(after: IncidentKey | None) -> str:
    """Return the `sysparm_query` for the incidents ordered after the key `after`.

    The key order is `sys_updated_on`, then `sys_id` to break ties between
    records updated in the same second. `^NQ` joins the two alternatives with OR.
    """
    if after is None:
        return ORDER_CLAUSE
    updated_on, sys_id = after
    if not _TIMESTAMP.fullmatch(updated_on):
        msg = f"sys_updated_on {updated_on!r} in the cursor is invalid; expected 'YYYY-MM-DD HH:MM:SS' in UTC"
        raise ValueError(msg)
    if not _SYS_ID.fullmatch(sys_id):
        msg = f"sys_id {sys_id!r} in the cursor is invalid; expected 32 lowercase hexadecimal characters"
        raise ValueError(msg)
    # NOTE: ServiceNow may read the date values of a query in the integration
    # user's time zone. Set that user's time zone to UTC to match the raw values.
    return f"sys_updated_on>{updated_on}^NQsys_updated_on={updated_on}^sys_id>{sys_id}^{ORDER_CLAUSE}"


class ServiceNowClient(ConnectorClient):
    """Client for one ServiceNow instance, such as https://example.service-now.com.

    `credentials` contains either `username` and `password` (basic auth) or
    `oauth_token` (bearer auth). Other keyword arguments are those of
    `ConnectorClient`.
    """

    vendor = "ServiceNow"
    credential_hint = "the user name and password (or OAuth token) of this connection"
    permission_hint = "the integration user's roles and the ACLs on the incident table"

    def __init__(self, base_url: str, credentials: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(base_url, auth=_servicenow_auth(credentials), **kwargs)

    def iter_incident_pages(
        self,
        after: IncidentKey | None = None,
        page_size: int = 100,
    ) -> Iterator[ServiceNowIncidentPage]:
        """Yield the incidents ordered after the key `after`, one page at a time.

        Pass None to start from the oldest incident, or a stored `cursor` to
        resume. An incident updated during the sync moves to a later key and is
        yielded again there.
        """
        if page_size < 1:
            msg = f"page_size {page_size} is invalid; pass at least 1"
            raise ValueError(msg)
        guard = PaginationGuard(self, INCIDENT_PATH, start=after)
        cursor = after
        while True:
            params = {
                "sysparm_query": incident_keyset_query(cursor),
                "sysparm_limit": page_size,
                "sysparm_display_value": "false",
            }
            payload = self.get_json(INCIDENT_PATH, params=params)
            if not isinstance(payload, dict) or not isinstance(payload.get("result"), list):
                raise self.unexpected_payload(INCIDENT_PATH, "the 'result' list is missing")
            incidents: list[dict[str, Any]] = payload["result"]
            if not incidents:
                return

            next_cursor = self._incident_key(incidents[-1])
            guard.check(next_cursor)
            if cursor is not None and next_cursor < cursor:
                msg = (
                    f"ServiceNow returned incident key {next_cursor} after {cursor} for connection "
                    f"{self.connection_label}, so the keyset query was not applied; check that "
                    "the integration user may query sys_updated_on and sys_id."
                )
                raise PaginationLoopError(msg, connection_id=self.connection_id)
            logger.debug(
                "ServiceNow incident page for connection %s: %d incidents up to %s",
                self.connection_id,
                len(incidents),
                next_cursor,
            )
            yield ServiceNowIncidentPage(incidents, next_cursor)
            if len(incidents) < page_size:
                return
            cursor = next_cursor

    def update_incident(self, sys_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Set incident fields with PATCH and return the updated record."""
        if not _SYS_ID.fullmatch(sys_id):
            msg = f"sys_id {sys_id!r} is invalid; expected 32 lowercase hexadecimal characters"
            raise ValueError(msg)
        if not fields:
            msg = f"fields for ServiceNow incident {sys_id} are empty; pass at least one field to set"
            raise ValueError(msg)
        path = f"{INCIDENT_PATH}/{sys_id}"
        # Setting the same values again changes nothing, so PATCH is retried like PUT.
        payload = self.send_json("PATCH", path, dict(fields), idempotent=True)
        if not isinstance(payload, dict) or not isinstance(payload.get("result"), dict):
            raise self.unexpected_payload(path, "the 'result' object is missing", method="PATCH")
        return payload["result"]

    def _incident_key(self, record: Any) -> IncidentKey:
        updated_on = record.get("sys_updated_on") if isinstance(record, dict) else None
        sys_id = record.get("sys_id") if isinstance(record, dict) else None
        if not isinstance(updated_on, str) or not _TIMESTAMP.fullmatch(updated_on):
            raise self.unexpected_payload(
                INCIDENT_PATH, "an incident has no 'sys_updated_on' of the form 'YYYY-MM-DD HH:MM:SS'"
            )
        if not isinstance(sys_id, str) or not _SYS_ID.fullmatch(sys_id):
            raise self.unexpected_payload(INCIDENT_PATH, "an incident has no 32-character 'sys_id'")
        return updated_on, sys_id


def _servicenow_auth(credentials: Mapping[str, str]) -> requests.auth.AuthBase:
    if credentials.get("oauth_token"):
        return BearerAuth(credentials["oauth_token"])
    username = credentials.get("username")
    password = credentials.get("password")
    if username and password:
        return requests.auth.HTTPBasicAuth(username, password)
    keys = ", ".join(sorted(credentials)) or "none"
    msg = f"ServiceNow credentials must contain 'username' and 'password', or 'oauth_token'; the keys given are: {keys}"
    raise ValueError(msg)
