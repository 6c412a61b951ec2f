"""HTTP clients for the helpdesk and service-desk tools the hub connects to.

Every vendor client (`zendesk`, `freshdesk`, `servicenow`) builds on the shared
policy in `connectors.http`: one `requests.Session` per client, a timeout on every
request, retries with backoff for 429, 5xx and connection errors, and typed
errors for authentication failures and rejected requests. The clients return the
vendors' JSON records unchanged; mapping them to the hub's commands happens
elsewhere.
"""
