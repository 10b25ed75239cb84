"""The demo department: the customer service of a pharmacy chain (seed 001), made from a seed.

Everything random comes from one `random.Random(seed)` and one seeded `Faker("zh_CN")`, drawn in
a fixed order, so the same seed gives the same staff, names, phones, card numbers and tags, and a
smaller `count` gives a prefix of a larger one. Dates are drawn up to a fixed day in the past,
never up to "today", so the data does not drift from one day to the next.
"""

import datetime as dt
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import phonenumbers
from django.contrib.auth.hashers import make_password
from django.db import transaction
from faker import Faker
from pypinyin import lazy_pinyin

from kefu.accounts.models import Store, Team, User
from kefu.accounts.roles import Role
from kefu.accounts.services import user_create

PASSWORD = "kefu-demo"
# The last day any generated date may fall on; in the past, so no date is ever "in the future".
REFERENCE_DATE = dt.date(2024, 12, 31)
MEMBERS_SINCE = dt.date(2012, 1, 1)


@dataclass(frozen=True)
class DemoStore:
    code: str
    name: str
    address: str
    phone: str


@dataclass(frozen=True)
class DemoStaff:
    username: str
    role: str
    display_name: str
    team: str = ""
    store: str = ""


STORES = [
    DemoStore("S01", "康宁大药房·人民路店", "杭州市上城区人民路128号", "0571-87061128"),
    DemoStore("S02", "康宁大药房·解放路店", "杭州市上城区解放路256号", "0571-87062256"),
    DemoStore("S03", "康宁大药房·文三路店", "杭州市西湖区文三路90号", "0571-88063090"),
    DemoStore("S04", "康宁大药房·江南大道店", "杭州市滨江区江南大道518号", "0571-86064518"),
]

HOTLINE, ONLINE, COMPLAINTS, RECORDS, KEY_ACCOUNTS, MANAGEMENT = (
    "热线组",
    "在线组",
    "客诉组",
    "档案组",
    "大客户组",
    "客服部管理",
)

# In the order of the organisation chart of seed 001; employee numbers follow this order.
STAFF = [
    DemoStaff("director", Role.DIRECTOR, "周建国", MANAGEMENT),
    DemoStaff("manager", Role.MANAGER, "陈静", MANAGEMENT),
    DemoStaff("supervisor1", Role.SUPERVISOR, "李娜", HOTLINE),
    DemoStaff("supervisor2", Role.SUPERVISOR, "王磊", ONLINE),
    DemoStaff("agent01", Role.AGENT, "张敏", HOTLINE),
    DemoStaff("agent02", Role.AGENT, "刘洋", HOTLINE),
    DemoStaff("agent03", Role.AGENT, "杨雪", HOTLINE),
    DemoStaff("agent04", Role.AGENT, "赵婷", HOTLINE),
    DemoStaff("agent05", Role.AGENT, "黄俊", HOTLINE),
    DemoStaff("agent06", Role.AGENT, "吴倩", ONLINE),
    DemoStaff("agent07", Role.AGENT, "徐丽", ONLINE),
    DemoStaff("agent08", Role.AGENT, "孙浩", ONLINE),
    DemoStaff("agent09", Role.AGENT, "胡佳怡", ONLINE),
    DemoStaff("agent10", Role.AGENT, "朱琳", ONLINE),
    DemoStaff("complaints", Role.COMPLAINT_SPECIALIST, "郭芳", COMPLAINTS),
    DemoStaff("records", Role.RECORDS_OFFICER, "何雨桐", RECORDS),
    DemoStaff("vip", Role.VIP_SPECIALIST, "高峰", KEY_ACCOUNTS),
    DemoStaff("store1", Role.STORE_MANAGER, "林晓燕", store="S01"),
    DemoStaff("store2", Role.STORE_MANAGER, "马志强", store="S02"),
    DemoStaff("store3", Role.STORE_MANAGER, "罗红梅", store="S03"),
    DemoStaff("store4", Role.STORE_MANAGER, "梁宇", store="S04"),
    DemoStaff("admin", Role.ADMINISTRATOR, "系统管理员"),
]
USERNAMES = [s.username for s in STAFF]
LOGINS_HELP = (
    "Demo logins: director, manager, supervisor1, supervisor2, agent01..agent10, complaints, "
    f"records, vip, store1..store4, admin — password: {PASSWORD}"
)

# Mobile prefixes of China Mobile, Unicom, Telecom and the virtual operators. 174 is left out:
# it is a satellite range and most of its numbers are not valid.
MOBILE_PREFIXES = [
    *range(130, 140),
    150,
    151,
    152,
    153,
    155,
    156,
    157,
    158,
    159,
    166,
    170,
    171,
    172,
    173,
    175,
    176,
    177,
    178,
    *range(180, 190),
    191,
    198,
    199,
]
EMAIL_DOMAINS = ["qq.com", "163.com", "126.com", "sina.com", "foxmail.com", "139.com"]

TAG_CHRONIC, TAG_HYPERTENSION, TAG_DIABETES, TAG_MATERNAL, TAG_ELDERLY = (
    "慢病",
    "高血压",
    "糖尿病",
    "母婴",
    "中老年",
)
TAG_SUPPLEMENTS, TAG_MEMBER_DAY, TAG_SENSITIVE_SKIN, TAG_COLDS, TAG_JOINTS = (
    "保健品",
    "会员日",
    "敏感肌",
    "感冒咳嗽",
    "骨关节",
)
TAG_RHINITIS, TAG_SLEEP, TAG_TCM, TAG_DELIVERY = "过敏性鼻炎", "睡眠", "中药调理", "送药上门"

NOTES = [
    "需定期回访血压情况",
    "偏好上午来电",
    "长期购买降糖药，提醒按时复诊",
    "对青霉素过敏",
    "子女代为购药",
    "希望送药上门",
    "关注会员日活动",
    "来电前请先发短信",
    "听力不好，请大声说话",
    "只在微信联系",
    "曾投诉排队时间长，已处理",
    "宝宝奶粉过敏，需推荐无乳糖配方",
]

# (value, weight) tables.
LEVELS = [("normal", 85), ("vip", 12), ("key_account", 3)]
STATUSES_BY_LEVEL = {
    "normal": [("prospect", 18), ("customer", 34), ("member", 42), ("closed", 6)],
    "vip": [("customer", 15), ("member", 83), ("closed", 2)],
    "key_account": [("customer", 10), ("member", 90)],
}
SOURCES = [
    ("store", 30),
    ("wechat", 22),
    ("phone", 20),
    ("walk_in", 8),
    ("platform", 8),
    ("web_chat", 6),
    ("qq", 2),
    ("email", 1),
    ("other", 3),
]
TEMPERAMENTS = [("", 85), ("composed", 8), ("assertive", 4), ("irate", 1.5), ("confused", 1.5)]
# Age bands of a pharmacy's customers: older people buy more medicine.
AGE_BANDS = [((18, 29), 14), ((30, 44), 26), ((45, 59), 28), ((60, 75), 24), ((76, 90), 8)]
STORE_WEIGHTS = [35, 25, 22, 18]


def _pick(rng: random.Random, table: Sequence[tuple[Any, float]]) -> Any:
    values, weights = zip(*table, strict=True)
    return rng.choices(values, weights=weights)[0]


def _years_before(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _is_valid_mobile(number: str) -> bool:
    return phonenumbers.is_valid_number(phonenumbers.parse(number, "CN"))


class _Generator:
    """Draws one customer after another; the uniqueness sets make each draw depend on the last."""

    def __init__(self, seed: int, store_codes: Sequence[str]):
        self.rng = random.Random(seed)
        self.fake = Faker("zh_CN")
        self.fake.seed_instance(seed)
        self.store_codes = list(store_codes)
        self.store_weights = (STORE_WEIGHTS * len(self.store_codes))[: len(self.store_codes)]
        self.phones: set[str] = set()
        self.emails: set[str] = set()
        self.cards = 0

    def mobile(self) -> str:
        while True:
            prefix = self.rng.choice(MOBILE_PREFIXES)
            number = f"{prefix}{self.rng.randrange(10**8):08d}"
            if number not in self.phones and _is_valid_mobile(number):
                self.phones.add(number)
                return number

    def email(self, name: str) -> str:
        rng = self.rng
        if rng.random() < 0.4:
            local = str(rng.randrange(10_000_000, 3_000_000_000))
            domain = "qq.com"
        else:
            local = "".join(lazy_pinyin(name)) or "kefu"
            if rng.random() < 0.7:
                local += str(rng.choice([rng.randrange(1, 100), rng.randrange(1960, 2006)]))
            domain = rng.choice(EMAIL_DOMAINS)
        email = f"{local}@{domain}"
        while email in self.emails:
            email = f"{local}{rng.randrange(10, 1000)}@{domain}"
        self.emails.add(email)
        return email

    def tags(self, *, age: int | None, gender: str, status: str) -> list[str]:
        rng = self.rng
        older = age is not None and age >= 45
        tags = []
        if age is not None and age >= 55 and rng.random() < 0.7:
            tags.append(TAG_ELDERLY)
        hypertension = rng.random() < (0.28 if older else 0.03)
        diabetes = rng.random() < (0.16 if older else 0.02)
        if hypertension or diabetes or rng.random() < 0.04:
            tags.append(TAG_CHRONIC)
        if hypertension:
            tags.append(TAG_HYPERTENSION)
        if diabetes:
            tags.append(TAG_DIABETES)
        if age is not None and age >= 50 and rng.random() < 0.2:
            tags.append(TAG_JOINTS)
        if gender == "female" and age is not None and 24 <= age <= 40 and rng.random() < 0.35:
            tags.append(TAG_MATERNAL)
        if gender == "female" and age is not None and age < 45 and rng.random() < 0.12:
            tags.append(TAG_SENSITIVE_SKIN)
        if status == "member" and rng.random() < 0.3:
            tags.append(TAG_MEMBER_DAY)
        for tag, chance in (
            (TAG_SUPPLEMENTS, 0.14),
            (TAG_COLDS, 0.1),
            (TAG_RHINITIS, 0.05),
            (TAG_SLEEP, 0.04),
            (TAG_TCM, 0.05),
            (TAG_DELIVERY, 0.2 if age is not None and age >= 70 else 0.02),
        ):
            if rng.random() < chance:
                tags.append(tag)
        return tags

    def customer(self) -> dict[str, Any]:
        rng, fake = self.rng, self.fake
        roll = rng.random()
        gender = "female" if roll < 0.57 else ("male" if roll < 0.97 else "")
        if gender == "female":
            name = fake.name_female()
        elif gender == "male":
            name = fake.name_male()
        else:
            name = fake.name()
        level = _pick(rng, LEVELS)
        status = _pick(rng, STATUSES_BY_LEVEL[level])
        age = None
        birthday = None
        if status == "member" or rng.random() < 0.85:
            low, high = _pick(rng, AGE_BANDS)
            age = rng.randint(low, high)
            latest = _years_before(REFERENCE_DATE, age)
            birthday = fake.date_between_dates(latest - dt.timedelta(days=364), latest)
        card, member_since = "", None
        if status == "member" or (status == "closed" and rng.random() < 0.5):
            # Members join as adults: not before their 18th birthday.
            earliest = MEMBERS_SINCE if birthday is None else _years_before(birthday, -18)
            member_since = fake.date_between_dates(
                min(max(MEMBERS_SINCE, earliest), REFERENCE_DATE), REFERENCE_DATE
            )
            self.cards += 1
            card = f"KN{member_since.year}{self.cards:06d}"
        phone = self.mobile()
        phone2 = self.mobile() if rng.random() < 0.06 else ""
        email = self.email(name) if rng.random() < 0.12 else ""
        store = ""
        if self.store_codes and rng.random() < 0.96:
            store = rng.choices(self.store_codes, weights=self.store_weights)[0]
        tags = self.tags(age=age, gender=gender, status=status)
        return {
            "name": name,
            "phone": phone,
            "phone2": phone2,
            "email": email,
            "gender": gender,
            "birthday": birthday,
            "level": level,
            "status": status,
            "store": store,
            "tags": ",".join(tags),
            "source": _pick(rng, SOURCES),
            "membership_card_no": card,
            "member_since": member_since,
            "notes": rng.choice(NOTES) if rng.random() < 0.1 else "",
            "temperament": _pick(rng, TEMPERAMENTS),
        }


STORE_CODES = tuple(s.code for s in STORES)


def customer_rows(
    *, seed: int, count: int, store_codes: Sequence[str] = STORE_CODES
) -> list[dict[str, Any]]:
    """`count` customers as import rows (the keys of kefu.customers.imports); same seed, same rows."""
    generator = _Generator(seed, store_codes)
    return [generator.customer() for _ in range(count)]


def customer_row_chunks(
    *, seed: int, count: int, size: int = 10_000, store_codes: Sequence[str] = STORE_CODES
) -> Iterator[list[dict[str, Any]]]:
    """The rows of `customer_rows` in lists of `size`, for loads too big to hold at once."""
    generator = _Generator(seed, store_codes)
    for start in range(0, count, size):
        yield [generator.customer() for _ in range(min(size, count - start))]


@transaction.atomic
def department_create() -> dict[str, User]:
    """The stores, teams and staff of the demo department; every login has the demo password."""
    stores = {}
    for s in STORES:
        stores[s.code], _created = Store.objects.get_or_create(
            code=s.code, defaults={"name": s.name, "address": s.address, "phone": s.phone}
        )
    teams = {}
    for name in dict.fromkeys(s.team for s in STAFF if s.team):
        teams[name], _created = Team.objects.get_or_create(name=name)
    users = {}
    for number, s in enumerate(STAFF, start=1):
        users[s.username] = user_create(
            username=s.username,
            # Hashing once below instead of 22 times saves seconds; the password is public anyway.
            password=None,
            role=s.role,
            display_name=s.display_name,
            employee_no=f"KF{number:03d}",
            team=teams.get(s.team),
            store=stores.get(s.store),
            actor=None,
        )
    password = make_password(PASSWORD)
    User.objects.filter(username__in=USERNAMES).update(password=password)
    for user in users.values():
        user.password = password
    return users
