"""Push both ways: WebSub subscriptions in, webhooks out.

::

    signing      HMAC signatures: X-Hub-Signature (in), X-Aggregator-Signature (out)
    subscriber   subscribing to sources' hubs, answering verifications, taking distributions
    webhooks     queueing each new story of a topic for its ``notify:`` targets, delivering
    items        the JSON body of a webhook: a JSON Feed item and the topic's name
    service      the daemon's side: one loop for both, the callback handler for the web app

The subscriber's callbacks are served by :mod:`aggregator.web.callbacks`;
the store keeps subscriptions and deliveries (:mod:`aggregator.store.push`).
"""

from __future__ import annotations

from aggregator.push.service import PushService

__all__ = ["PushService"]
