"""The consultations API: conversations, messages, calls and quick replies."""

from ninja import Router

router = Router(tags=["conversations"])
