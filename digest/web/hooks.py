"""`POST /hooks/ses` and `POST /hooks/postmark`: provider bounce and complaint webhooks.

Both record through `digest.inbound.process.record_all`, the path mailed bounces take, so an
SES or Postmark event has the same outcome as the DSN it replaces (and, keyed on the
provider's event id, a redelivered webhook changes nothing).

- SES through SNS: off until `bounces.ses_topic_arns` lists the topics (anyone with an AWS
  account can make an SNS topic and point it at us; the signature proves only that SNS sent
  it). Every message's signature is verified against the certificate of an allow-listed
  `sns.<region>.amazonaws.com` host before anything in it is used; a verified
  `SubscriptionConfirmation` is confirmed by visiting its SubscribeURL (also checked to be an
  SNS host), which is what the AWS console would otherwise ask you to do by hand.
- Postmark: off until `bounces.postmark_user` and a password are set; HTTP basic auth,
  compared in constant time.

Answers: 200 with `{"recorded": N}`; 400 for a body that is not a provider payload, 401 for
bad credentials, 403 for a signature or topic refused, 404 for a hook that is off, 413 for a
body over 256 KiB. Nothing but the status and one short sentence is returned.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from digest.config.credentials import postmark_password
from digest.config.schema import Config
from digest.config.sending import inbound_settings
from digest.inbound.classify import Context
from digest.inbound.process import record_all
from digest.inbound.result import Classification
from digest.inbound.webhooks import (
    CertificateFetcher,
    WebhookError,
    check_basic_auth,
    fetch_certificate,
    parse_postmark,
    parse_ses,
)
from digest.store.database import Database

log = logging.getLogger("digest.web.hooks")
MAX_BODY = 256 * 1024
Confirmer = Callable[[str], None]


def confirm_subscription(url: str) -> None:
    """GET the SubscribeURL of a verified SubscriptionConfirmation (an SNS host, HTTPS)."""
    if urlsplit(url).scheme != "https":
        raise WebhookError(f"SubscribeURL {url!r} is not HTTPS")
    with urllib.request.urlopen(url, timeout=10) as response:
        response.read(65536)


class Hooks:
    def __init__(
        self,
        config: Config,
        database: Database,
        *,
        fetcher: CertificateFetcher = fetch_certificate,
        confirmer: Confirmer = confirm_subscription,
    ) -> None:
        self.config = config
        self.database = database
        self.fetcher = fetcher
        self.confirmer = confirmer
        inbound = inbound_settings(config)
        self.context = Context(keyring=inbound.keys, return_path=inbound.return_path)
        self.postmark_password = postmark_password(config)

    def routes(self) -> list[Route]:
        return [
            Route("/hooks/ses", self.ses, methods=["POST"]),
            Route("/hooks/postmark", self.postmark, methods=["POST"]),
        ]

    async def _body(self, request: Request) -> bytes | Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return PlainTextResponse("body too large", status_code=413)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return PlainTextResponse("body too large", status_code=413)
        return body

    async def ses(self, request: Request) -> Response:
        topics = self.config.bounces.ses_topic_arns
        if not topics:
            return PlainTextResponse("the SES hook is off (bounces.ses_topic_arns)", 404)
        body = await self._body(request)
        if isinstance(body, Response):
            return body

        def handle() -> Response:
            try:
                outcome = parse_ses(body, self.context, self.fetcher, topic_arns=topics)
            except WebhookError as exc:
                log.warning("POST /hooks/ses refused: %s", exc)
                status = 400 if "JSON" in str(exc) else 403
                return PlainTextResponse(str(exc), status_code=status)
            if outcome.confirm_url is not None:
                try:
                    self.confirmer(outcome.confirm_url)
                except (OSError, WebhookError) as exc:
                    log.error("cannot confirm the SNS subscription: %s", exc)
                    return PlainTextResponse("subscription not confirmed", status_code=502)
                log.info("confirmed the SNS subscription of %s", outcome.confirm_url)
                return JSONResponse({"confirmed": True})
            return self._record(outcome.results)

        return await run_in_threadpool(handle)

    async def postmark(self, request: Request) -> Response:
        user, password = self.config.bounces.postmark_user, self.postmark_password
        if not user or not password:
            return PlainTextResponse("the Postmark hook is off (bounces.postmark_user)", 404)
        if not check_basic_auth(request.headers.get("authorization"), user, password):
            return PlainTextResponse(
                "unauthorized", 401, headers={"WWW-Authenticate": 'Basic realm="digest"'}
            )
        body = await self._body(request)
        if isinstance(body, Response):
            return body

        def handle() -> Response:
            try:
                results = parse_postmark(body, self.context)
            except WebhookError as exc:
                return PlainTextResponse(str(exc), status_code=400)
            return self._record(results)

        return await run_in_threadpool(handle)

    def _record(self, results: list[Classification]) -> Response:
        applied = record_all(self.database, results, self.config.bounces.soft_limit)
        return JSONResponse(
            {"recorded": sum(1 for a in applied if a.action not in ("duplicate", "unknown"))}
        )
