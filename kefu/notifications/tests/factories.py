import factory

from kefu.accounts.tests.factories import UserFactory
from kefu.notifications.models import Notification


class NotificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Notification

    recipient = factory.SubFactory(UserFactory)
    kind = "ticket_assigned"
    title = factory.Sequence(lambda n: f"工单 #{n} 已分派给你")
    body = "客户来电投诉配送延迟。"
    url = factory.Sequence(lambda n: f"/tickets/{n}/")
