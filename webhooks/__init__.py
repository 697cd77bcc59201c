"""Webhook delivery: a task of each server process posts the outbox's events.

It claims due deliveries (models/webhook.py), posts each signed body to its
endpoint, and records the answer: a 2xx delivers it; anything else, or no
answer within the timeout, is retried on the contract's schedule with the same
`webhook-id`. It wakes when this process stores an event and polls for the
rest (retries, other processes' events, claims of senders that died).
"""

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from uuid import uuid4

import httpx2

from auth.sealing import unseal
from models.webhook import WebhookDelivery, on_new_event
from models.workers import run
from settings import Settings
from webhooks.signing import signed_headers

log = logging.getLogger("user_service.webhooks")
# Deliveries claimed at once (posted side by side) by one sender.
BATCH = 20


class WebhookSender:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Who holds a claim: this sender alone, whatever the host or process.
        self.owner = uuid4().hex

    async def deliver_forever(self) -> None:
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        stop_listening = on_new_event(lambda: loop.call_soon_threadsafe(wake.set))
        # Only URLs an operator registered are posted to, and a redirect is an
        # answer like any other non-2xx: never followed to another host.
        timeout = httpx2.Timeout(self.settings.webhook_timeout)
        try:
            async with httpx2.AsyncClient(
                timeout=timeout, follow_redirects=False, trust_env=False
            ) as client:
                while True:
                    wake.clear()
                    if await self.deliver_due(client):
                        continue  # more may be due at once
                    # asyncio.timeout, not wait_for: 3.11's wait_for loses a
                    # cancellation that lands as the event is set, and the
                    # sender would then outlive the server's shutdown.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.settings.webhook_poll_interval):
                            await wake.wait()
        finally:
            stop_listening()

    async def deliver_due(self, client: httpx2.AsyncClient) -> int:
        """Claim what is due and post it; how many were claimed."""
        try:
            claimed = await run(
                WebhookDelivery.claim_due,
                owner=self.owner,
                lease=self.settings.webhook_lease,
                limit=BATCH,
            )
            await asyncio.gather(*(self.deliver(client, one) for one in claimed))
        except Exception:  # a failed round must not stop the next one
            log.exception("delivering webhooks failed")
            return 0
        return len(claimed)

    async def deliver(
        self, client: httpx2.AsyncClient, delivery: WebhookDelivery
    ) -> None:
        status = await self.post(client, delivery)
        delivered = status.startswith("2")
        if not delivered:
            log.warning(
                "webhook delivery failed",
                extra={"endpoint": delivery.endpoint.id, "status": status},
            )
        await run(
            delivery.finish,
            owner=self.owner,
            status=status,
            delivered=delivered,
            delays=self.settings.webhook_retry_delays,
        )

    async def post(self, client: httpx2.AsyncClient, delivery: WebhookDelivery) -> str:
        """POST the event's body; the answer's status code, or why there is none."""
        event, endpoint = delivery.event, delivery.endpoint
        secret = unseal(endpoint.sealed_secret, keys=[str(self.settings.data_key)])
        headers = signed_headers(
            secret,
            message_id=f"msg_{event.public_id.hex}",
            body=event.body,
            now=datetime.now(UTC),
        )
        try:
            # The whole exchange has the timeout, not each read: a receiver that
            # trickles its answer is cut off too.
            async with asyncio.timeout(self.settings.webhook_timeout):
                request = client.build_request(
                    "POST", endpoint.url, content=event.body, headers=headers
                )
                # The answer's body is never read: its status is all that counts.
                response = await client.send(request, stream=True)
                await response.aclose()
        except TimeoutError:
            return "timeout"
        except httpx2.HTTPError as error:
            return type(error).__name__
        return str(response.status_code)
