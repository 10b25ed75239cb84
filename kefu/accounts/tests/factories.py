import factory

from kefu.accounts.models import Store, Team, User
from kefu.accounts.services import user_set_role


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"班组{n}")


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"S{n:03d}")
    name = factory.Sequence(lambda n: f"第{n}门店")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    display_name = factory.Sequence(lambda n: f"员工{n}")
    password = factory.django.Password("pw-kefu-123")
    role = "agent"

    @factory.post_generation
    def apply_role(obj, create, extracted, **kwargs):
        if create:
            role, obj.role = obj.role, ""
            user_set_role(user=obj, role=role)
