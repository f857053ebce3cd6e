"""A three-skill collection written for the tests, small enough to check by hand."""

from __future__ import annotations

from pathlib import Path

from conftest import write


def write_mini(root: Path) -> Path:
    write(
        root / "backend/webhooks/skill.yaml",
        """
        id: webhooks
        name: Webhooks
        description: Receiving webhooks reliably
        triggers: [webhook, duplicate event]
        patterns:
          - name: Idempotent handler
            description: Record each event id and skip events already processed
            when: The provider retries deliveries
          - name: Verify first
            description: Check the signature before parsing the body
        anti_patterns:
          - name: Slow handler
            description: Doing the work inside the request
            why: The provider times out and retries
            instead: Queue the work and answer quickly
        handoffs:
          - trigger: "signature|hmac"
            to: security
            context: Signature verification review
          - when: the consumer must survive the same message arriving twice
            to: queues
            context: Idempotent consumers
          - trigger: frontend or ui or component
            to: ui
            context: Show delivery status
    """,
    )
    write(root / "backend/webhooks/validations.yaml", "validations: []\n")
    write(
        root / "backend/queues/skill.yaml",
        """
        id: queues
        name: Message queues
        description: Background jobs and message brokers
        triggers: [queue, worker]
        patterns:
          - name: Dead letter queue
            description: Park messages that keep failing
        handoffs:
          - trigger: webhook
            to: webhooks
            context: Incoming events
    """,
    )
    write(
        root / "security/security/skill.yaml",
        """
        id: security
        name: Application security
        description: Injection, secrets and signatures
        triggers: [security audit, penetration test]
        anti_patterns:
          - name: Secrets in code
            description: API keys committed to the repository
    """,
    )
    return root
