"""Transport for outgoing webhooks.

The modules here sign messages the Standard Webhooks way (``signing``), reject
receiver URLs that point into private networks or at cloud metadata services
(``guard``), decide when a failed delivery is retried (``retry``), and send one
delivery attempt over HTTP (``sender``). They know nothing about the event
store, so the delivery process decides which events go to which endpoint.
"""
