"""The demo department's tickets: the configuration a pharmacy chain's customer service runs on
(category trees, root causes, departments with their handlers, queues, SLA policies) and a few
hundred tickets of the last 60 days.

The tickets are not inserted as rows: they are worked through kefu.tickets.services with an
explicit `now`, step after step in the order they happened, with the timer pass
(`ticket_timers_run`) running a few times a day in between. So their timelines, SLA clocks,
warnings and breaches, urges and escalations, promised callbacks, aftercare follow-ups and
notifications are the ones the product itself writes.

What happens is drawn from one `random.Random` seeded from the demo's seed, so the same seed
gives the same tickets (subjects, customers, steps and their offsets); the dates are relative to
the moment of loading, so the inbox looks alive whenever the demo is loaded.
"""

import bisect
import datetime as dt
import heapq
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.db.models import Model, Q
from django.utils import timezone

from kefu.accounts.models import Store, Team, User
from kefu.accounts.roles import Role
from kefu.accounts.services import user_create
from kefu.businesstime.clock import WorkCalendar
from kefu.businesstime.selectors import work_calendar_get
from kefu.customers.models import Customer, CustomerEvent
from kefu.demo import data
from kefu.followups.models import FollowUp
from kefu.followups.services import followup_complete
from kefu.notifications.models import Notification
from kefu.tickets import services
from kefu.tickets.models import (
    Category,
    Department,
    ExternalEscalation,
    Queue,
    QueueMember,
    RootCause,
    SlaPolicy,
    Ticket,
    TicketConfig,
    TicketHandoff,
)

# Tickets of the default demo (5,000 customers); smaller archives get one per 10 customers.
DEFAULT_TICKETS = 300
DAYS = 60

# --- Configuration ----------------------------------------------------------------------------

# (name, children); a child is a name or another (name, children) pair.
CATEGORY_TREE: list[tuple[str, list[Any]]] = [
    ("药品质量", ["过期药品", "包装破损", "疑似假药"]),
    ("服务态度", ["店员态度", "客服态度"]),
    ("门店服务", ["营业时间", "排队等候", "发票"]),
    ("价格", ["价格不符", "促销争议"]),
    ("医保", ["医保支付", "医保结算异常"]),
    ("配送", ["配送范围", "配送延误", "错发漏发", "定期送药"]),
    ("会员积分", ["积分兑换", "会员权益", "会员日"]),
    ("处方与用药咨询", ["用法用量", "药物相互作用", "处方药购买", "不良反应"]),
    ("医疗器械", ["使用指导", "故障报修", "退换货"]),
]
# A second example: the categories of a property-management company's service desk, loaded with
# `kefu demo --categories property` (the demo's tickets use the pharmacy's only).
PROPERTY_ROOT = "物业服务（示例）"
PROPERTY_CATEGORY_TREE: list[tuple[str, list[Any]]] = [
    (
        PROPERTY_ROOT,
        [
            ("维修", ["水电", "电梯", "门禁"]),
            ("环境", ["保洁", "绿化"]),
            ("安保", []),
            ("停车", []),
            ("收费", ["物业费争议"]),
        ],
    ),
]
CATEGORY_SETS = {"pharmacy": CATEGORY_TREE, "property": PROPERTY_CATEGORY_TREE}
ROOT_CAUSES = [
    "产品质量",
    "服务态度",
    "流程缺陷",
    "价格政策",
    "物流配送",
    "系统故障",
    "顾客误解",
    "其他",
]


@dataclass(frozen=True)
class DemoDepartment:
    name: str
    email: str
    urge_interval_minutes: int
    handler: data.DemoStaff


DEPARTMENTS = [
    DemoDepartment(
        "质量管理部",
        "quality@kangning.example",
        240,
        data.DemoStaff("quality", Role.DEPARTMENT_HANDLER, "沈丽华"),
    ),
    DemoDepartment(
        "物流配送部",
        "logistics@kangning.example",
        120,
        data.DemoStaff("logistics", Role.DEPARTMENT_HANDLER, "韩涛"),
    ),
    DemoDepartment(
        "门店运营部",
        "stores@kangning.example",
        240,
        data.DemoStaff("operations", Role.DEPARTMENT_HANDLER, "唐晓东"),
    ),
    DemoDepartment(
        "采购部",
        "purchasing@kangning.example",
        480,
        data.DemoStaff("purchasing", Role.DEPARTMENT_HANDLER, "冯雅琴"),
    ),
]
HANDLER_USERNAMES = [d.handler.username for d in DEPARTMENTS]
HANDLERS_HELP = "Department handlers (answer hand-offs): " + ", ".join(HANDLER_USERNAMES)

COMPLAINT_QUEUE, SERVICE_QUEUE = "投诉组", "客服组"
AGENTS = [f"agent{i:02d}" for i in range(1, 11)]
SPECIALIST = "complaints"

T = Ticket.Type
# (name, ticket type, severity, customer level, first response, next response, resolution,
#  counted on working hours)
SLA_POLICIES = [
    ("重大投诉", T.COMPLAINT, "major", "", 30, 60, 24 * 60, False),
    ("紧急投诉", T.COMPLAINT, "urgent", "", 60, 120, 8 * 60, True),
    ("VIP 一般投诉", T.COMPLAINT, "normal", "vip", 60, 240, 16 * 60, True),
    ("一般投诉", T.COMPLAINT, "normal", "", 120, 240, 16 * 60, True),
    ("VIP 售后", T.AFTER_SALES, "", "vip", 60, None, 24 * 60, True),
    ("售后", T.AFTER_SALES, "", "", 240, None, 24 * 60, True),
    ("咨询", T.CONSULTATION, "", "", 60, None, 8 * 60, True),
    # VIP customers are answered within the hour whatever they ask.
    ("VIP 客户", "", "", "vip", 60, None, 40 * 60, True),
    # Suggestions and service requests: answered within half a day, done within a week.
    ("其他工单", "", "", "", 240, None, 40 * 60, True),
]


@dataclass
class DemoConfig:
    categories: dict[str, Category]  # by path "药品质量 › 过期药品"
    root_causes: dict[str, RootCause]
    departments: dict[str, Department]
    handlers: dict[str, User]  # by department name
    queues: dict[str, Queue]


def _password_hash() -> str:
    """The demo password as the other demo logins hold it (hashing once costs a tenth of a s)."""
    existing = (
        User.objects.filter(username__in=data.USERNAMES)
        .exclude(password="")
        .exclude(password__startswith="!")
        .values_list("password", flat=True)
        .first()
    )
    return existing or make_password(data.PASSWORD)


def categories_create(tree: Sequence[Any] = CATEGORY_TREE) -> dict[str, Category]:
    """The categories of `tree` (CATEGORY_SETS), by path; those there already are kept."""
    found: dict[str, Category] = {}

    def walk(nodes: Sequence[Any], parent: Category | None, prefix: str) -> None:
        for position, node in enumerate(nodes):
            name, children = (node, []) if isinstance(node, str) else node
            category, _created = Category.objects.get_or_create(
                parent=parent, name=name, defaults={"position": position}
            )
            path = f"{prefix} › {name}" if prefix else name
            found[path] = category
            walk(children, category, path)

    walk(tree, None, "")
    return found


def _handler_get_or_create(staff: data.DemoStaff, number: int, password: str) -> User:
    user = User.objects.filter(username=staff.username).first()
    if user is not None:
        return user
    employee_no = f"KF{number:03d}"
    if User.objects.filter(employee_no=employee_no).exists():
        employee_no = None
    user = user_create(
        username=staff.username,
        password=None,
        role=staff.role,
        display_name=staff.display_name,
        employee_no=employee_no,
        actor=None,
    )
    User.objects.filter(pk=user.pk).update(password=password)
    user.password = password
    return user


def _queue_get_or_create(
    name: str, *, position: int, types: list[str], max_open: int, members: list[User], team
) -> Queue:
    queue, created = Queue.objects.get_or_create(
        name=name,
        defaults={
            "position": position,
            "ticket_types": types,
            "mode": Queue.Mode.ROUND_ROBIN,
            "max_open_per_agent": max_open,
            "team": team,
        },
    )
    if created:
        QueueMember.objects.bulk_create([QueueMember(queue=queue, user=u) for u in members])
    return queue


@transaction.atomic
def config_create() -> DemoConfig:
    """The ticket configuration of the demo department; what exists already is left as it is."""
    categories = categories_create()
    root_causes = {}
    for position, name in enumerate(ROOT_CAUSES):
        root_causes[name], _created = RootCause.objects.get_or_create(
            name=name, defaults={"position": position}
        )
    password = None
    departments, handlers = {}, {}
    for number, d in enumerate(DEPARTMENTS, start=len(data.STAFF) + 1):
        department, _created = Department.objects.get_or_create(
            name=d.name,
            defaults={"email": d.email, "urge_interval_minutes": d.urge_interval_minutes},
        )
        if not department.handlers.exists():
            password = password or _password_hash()
            department.handlers.add(_handler_get_or_create(d.handler, number, password))
        departments[d.name] = department
        handlers[d.name] = department.handlers.order_by("pk").first()
    staff = {u.username: u for u in User.objects.filter(username__in=[*AGENTS, SPECIALIST])}
    queues = {
        COMPLAINT_QUEUE: _queue_get_or_create(
            COMPLAINT_QUEUE,
            position=0,
            types=[T.COMPLAINT],
            max_open=40,
            members=[staff[SPECIALIST]] if SPECIALIST in staff else [],
            team=Team.objects.filter(name=data.COMPLAINTS).first(),
        ),
        SERVICE_QUEUE: _queue_get_or_create(
            SERVICE_QUEUE,
            position=1,
            types=[t for t in T.values if t != T.COMPLAINT],
            max_open=20,
            members=[staff[a] for a in AGENTS if a in staff],
            team=None,
        ),
    }
    for position, (name, kind, severity, level, first, nxt, resolution, hours) in enumerate(
        SLA_POLICIES
    ):
        SlaPolicy.objects.get_or_create(
            name=name,
            defaults={
                "ticket_type": kind,
                "severity": severity,
                "customer_level": level,
                "first_response_minutes": first,
                "next_response_minutes": nxt,
                "resolution_minutes": resolution,
                "business_hours": hours,
                "position": position,
            },
        )
    TicketConfig.current()
    return DemoConfig(categories, root_causes, departments, handlers, queues)


# --- What customers call about ----------------------------------------------------------------

DRUGS = [
    "阿莫西林胶囊",
    "布洛芬缓释胶囊",
    "连花清瘟胶囊",
    "硝苯地平控释片",
    "二甲双胍缓释片",
    "维生素C片",
    "复方甘草片",
    "蒙脱石散",
    "氯雷他定片",
    "奥美拉唑肠溶胶囊",
    "阿托伐他汀钙片",
    "感冒灵颗粒",
    "板蓝根颗粒",
    "六味地黄丸",
    "苯磺酸氨氯地平片",
    "头孢克肟分散片",
]
BP_DRUGS = ["硝苯地平控释片", "苯磺酸氨氯地平片", "缬沙坦胶囊"]
RX_DRUGS = ["阿莫西林胶囊", "头孢克肟分散片", "阿托伐他汀钙片", "二甲双胍缓释片", "硝苯地平控释片"]
KID_DRUGS = ["布洛芬混悬液", "对乙酰氨基酚混悬滴剂", "小儿氨酚黄那敏颗粒"]
SUPPLEMENTS = ["阿胶块", "深海鱼油软胶囊", "蛋白粉", "钙尔奇D", "东北人参片", "燕窝礼盒"]
DEVICES = ["电子血压计", "血糖仪", "家用制氧机", "雾化器", "电子体温计", "助听器"]
METERS = ["电子血压计", "血糖仪", "电子体温计"]
PLATFORMS = ["美团", "饿了么", "京东到家", "小程序商城"]


@dataclass(frozen=True)
class Matter:
    """One kind of call: what is asked, what is done about it and how it ends."""

    type: str
    category: str | None
    subject: str
    description: str
    reply: str
    resolution: str
    resolution_type: str = Ticket.ResolutionType.EXPLANATION
    cost: tuple[int, int] = (0, 0)
    root_cause: str = ""
    department: str = ""
    instructions: str = ""
    answer: str = ""
    waits: str = ""  # what the customer is asked to bring or send, if anything
    order: bool = False
    weight: float = 1


M = Matter
R = Ticket.ResolutionType
MATTERS = [
    # Consultations
    M(
        T.CONSULTATION,
        "处方与用药咨询 › 用法用量",
        subject="咨询{drug}的用法用量",
        description="顾客来电询问{drug}每天服用几次、饭前还是饭后服用，家中老人同时在服降压药。",
        reply="已按说明书告知用法用量，提醒与降压药间隔服用，如有不适及时就医。",
        resolution="药师解答了用法用量和注意事项，顾客表示清楚。",
        weight=3,
    ),
    M(
        T.CONSULTATION,
        "处方与用药咨询 › 用法用量",
        subject="孩子发烧能否服用{kid_drug}",
        description="顾客称孩子{age}岁，体温38.5℃，询问{kid_drug}的剂量和两次服药的间隔。",
        reply="已告知按体重计算剂量、两次服药间隔不少于4至6小时，持续高热请及时就医。",
        resolution="已解答儿童用药剂量，提醒观察体温变化。",
        weight=2,
    ),
    M(
        T.CONSULTATION,
        "处方与用药咨询 › 药物相互作用",
        subject="{drug}与{drug2}能否同时服用",
        description="顾客正在服用{drug2}，医生新开了{drug}，担心两种药一起吃有冲突。",
        reply="药师核对说明书后告知两药无明显相互作用，建议间隔1小时服用，并遵医嘱。",
        resolution="已由驻店药师解答相互作用问题。",
        weight=2,
    ),
    M(
        T.CONSULTATION,
        "处方与用药咨询 › 处方药购买",
        subject="购买{rx_drug}是否需要处方",
        description="顾客想在{store}购买{rx_drug}，询问是否必须提供纸质处方，电子处方是否可以。",
        reply="已说明处方药需凭处方购买，可在门店通过互联网医院问诊开具电子处方。",
        resolution="已告知处方药购买流程。",
        weight=2,
    ),
    M(
        T.CONSULTATION,
        "处方与用药咨询 › 不良反应",
        subject="服用{drug}后轻微头晕是否正常",
        description="顾客服用{drug}两天，感觉轻微头晕乏力，询问是否是药物副作用、能否继续服用。",
        reply="已告知说明书中列有该不良反应，建议暂停服用并尽快到医院复诊。",
        resolution="已提示不良反应处理方法并建议就医，顾客表示下午去医院。",
    ),
    M(
        T.CONSULTATION,
        "会员积分 › 积分兑换",
        subject="咨询会员积分兑换规则",
        description="顾客询问会员积分能否抵扣现金、积分有效期多久、在哪里兑换。",
        reply="已告知每100积分可抵1元，积分有效期至次年年底，门店和小程序均可兑换。",
        resolution="已解释积分规则。",
        weight=2,
    ),
    M(
        T.CONSULTATION,
        "会员积分 › 会员日",
        subject="咨询会员日活动内容",
        description="顾客询问本月会员日有哪些折扣，慢病用药是否参加活动。",
        reply="已告知每月8日、18日会员日全场9折，慢病用药另享积分加倍。",
        resolution="已介绍会员日活动。",
    ),
    M(
        T.CONSULTATION,
        "配送 › 配送范围",
        subject="咨询送药上门的配送范围",
        description="顾客家住{store}附近小区，询问能否送药上门、多久送到、是否收配送费。",
        reply="已告知门店3公里内满39元免配送费，一般1小时内送达。",
        resolution="已说明配送范围和时效。",
    ),
    M(
        T.CONSULTATION,
        "医保 › 医保支付",
        subject="询问{drug}的价格和医保报销",
        description="顾客询问{drug}在门店的售价，能否刷医保卡个人账户支付。",
        reply="已查询门店售价并告知{store}为医保定点药店，可使用医保个人账户支付。",
        resolution="已告知价格和医保支付方式。",
    ),
    M(
        T.CONSULTATION,
        "门店服务 › 营业时间",
        subject="咨询门店营业时间和夜间购药",
        description="顾客询问{store}的营业时间，夜间急需用药时去哪家门店。",
        reply="已告知各门店营业时间，解放路店提供24小时夜间售药窗口。",
        resolution="已告知营业时间。",
    ),
    M(
        T.CONSULTATION,
        "医疗器械 › 使用指导",
        subject="咨询{meter}的使用方法",
        description="顾客新买的{meter}不会使用，询问测量前的注意事项。",
        reply="已电话指导使用步骤，并告知可到门店由店员现场演示。",
        resolution="已完成使用指导。",
    ),
    # Complaints
    M(
        T.COMPLAINT,
        "药品质量 › 过期药品",
        subject="购买的{drug}已过期",
        description="顾客{date}在{store}购买{drug}，回家后发现外包装上的有效期已过{n}个月，担心已服用的"
        "两片影响健康，要求退款并给出说法。",
        reply="已向顾客致歉，告知已通知质量管理部核查该批次，今天内给予答复。",
        resolution="全额退款并赠送50元购物卡，向顾客当面致歉；门店已加强近效期商品巡检。",
        resolution_type=R.COMPENSATION,
        cost=(50, 200),
        root_cause="流程缺陷",
        department="质量管理部",
        instructions="请核查{store}该批次{drug}的效期管理记录，并下架同批次过期商品。",
        answer="已核实：门店近效期商品未按规定每周巡检，同批次剩余3盒已下架销毁，已通报门店。",
        weight=3,
    ),
    M(
        T.COMPLAINT,
        "药品质量 › 包装破损",
        subject="{drug}铝箔包装破损",
        description="顾客反映在{store}购买的{drug}打开后发现铝箔板有破损、药片受潮，要求换货。",
        reply="已致歉并告知可到店换货，已请质量管理部核查批次包装。",
        resolution="已为顾客更换同规格药品一盒并致歉。",
        resolution_type=R.EXCHANGE,
        cost=(0, 40),
        root_cause="产品质量",
        department="质量管理部",
        instructions="请核查{drug}该批次的包装质量，是否有其他门店反映同类问题。",
        answer="该批次为运输挤压所致，已联系供应商加固外箱，其他门店暂无同类反映。",
        waits="请顾客拍摄破损包装和批号照片",
        weight=2,
    ),
    M(
        T.COMPLAINT,
        "药品质量 › 疑似假药",
        subject="怀疑购买的{supplement}是假货",
        description="顾客称在{platform}下单的{supplement}与以往购买的包装颜色、防伪码不一致，扫码显示"
        "已被查询多次，怀疑买到假货。",
        reply="已安抚顾客，告知将联系采购部向供应商核实来源，请顾客保留商品和包装。",
        resolution="采购部提供了该批次检验报告和进货票据，包装为厂家新版；已向顾客解释并提供报告复印件，"
        "顾客认可。",
        resolution_type=R.EXPLANATION,
        cost=(0, 0),
        root_cause="顾客误解",
        department="采购部",
        instructions="请联系供应商核实该批次{supplement}的来源和防伪码情况，提供进货票据。",
        answer="供应商已提供检验报告和进货票据；防伪码多次被查询系门店验货时扫码所致，包装为厂家新版。",
        order=True,
    ),
    M(
        T.COMPLAINT,
        "服务态度 › 店员态度",
        subject="{store}店员服务态度冷淡",
        description="顾客{date}到{store}购药，询问药品用法时店员不耐烦，说“说明书上都有，自己看”。",
        reply="已向顾客致歉，告知将请门店运营部核实并反馈处理结果。",
        resolution="门店店长已约谈当班店员并当面向顾客致歉，赠送小礼品一份。",
        resolution_type=R.COMPENSATION,
        cost=(10, 30),
        root_cause="服务态度",
        department="门店运营部",
        instructions="请门店店长调取当日监控，约谈当班店员，反馈处理结果。",
        answer="店长已约谈当班店员，店员承认服务用语不当，已书面检讨并扣减当月服务分。",
        weight=2,
    ),
    M(
        T.COMPLAINT,
        "服务态度 › 客服态度",
        subject="热线客服未按约定时间回电",
        description="顾客称前天咨询处方药购买时客服答应当天下午回电，但一直没有人联系。",
        reply="已致歉并当即解答顾客的问题，已反馈客服主管。",
        resolution="已向顾客致歉并解答问题，主管已对相关客服进行辅导。",
        resolution_type=R.EXPLANATION,
        cost=(0, 0),
        root_cause="服务态度",
    ),
    M(
        T.COMPLAINT,
        "价格 › 价格不符",
        subject="货架标价与结账价格不一致",
        description="顾客在{store}购买{drug}，结账价格比货架标价贵了8元，店员称以系统价格为准，顾客要求退还差价。",
        reply="已致歉，告知将核实门店价签并退还差价。",
        resolution="已退还差价并赠送积分200分，门店已更换错误价签。",
        resolution_type=R.REFUND,
        cost=(8, 30),
        root_cause="流程缺陷",
        department="门店运营部",
        instructions="请核实{store}{drug}的价签是否更新，退还顾客差价。",
        answer="价签未随调价及时更换，已全店排查价签并更正。",
        weight=2,
    ),
    M(
        T.COMPLAINT,
        "价格 › 促销争议",
        subject="会员日折扣没有生效",
        description="顾客会员日在{store}消费{n}8元，小票显示未享受9折，店员称系统问题无法处理。",
        reply="已致歉，告知核实后退还折扣差额。",
        resolution="已退还折扣差额，信息部已修复收银系统会员日规则。",
        resolution_type=R.REFUND,
        cost=(5, 40),
        root_cause="系统故障",
    ),
    M(
        T.COMPLAINT,
        "配送 › 配送延误",
        subject="送药上门超时{n}小时",
        description="顾客通过{platform}下单，承诺1小时送达，实际等了{n}小时，家中老人等着吃药。",
        reply="已致歉，已联系物流配送部加急处理。",
        resolution="已送达并向顾客致歉，赠送20元无门槛优惠券。",
        resolution_type=R.COMPENSATION,
        cost=(10, 20),
        root_cause="物流配送",
        department="物流配送部",
        instructions="请查明订单延误原因并尽快送达，反馈骑手配送轨迹。",
        answer="当天配送高峰骑手不足，订单被漏派；已补派并送达，已调整高峰时段排班。",
        order=True,
        weight=2,
    ),
    M(
        T.COMPLAINT,
        "配送 › 错发漏发",
        subject="线上订单漏发{drug}",
        description="顾客在{platform}订购{drug}等三种药品，收到时少了{drug}一盒。",
        reply="已致歉，告知将核实出库记录后补发。",
        resolution="已补发漏发药品并免运费，向顾客致歉。",
        resolution_type=R.EXCHANGE,
        cost=(15, 60),
        root_cause="物流配送",
        department="物流配送部",
        instructions="请核对该订单的出库和打包记录，安排补发。",
        answer="打包时漏装一盒，已安排当日补发，打包环节增加复核。",
        order=True,
    ),
    M(
        T.COMPLAINT,
        "会员积分 › 积分兑换",
        subject="会员积分被清零",
        description="顾客发现会员账户里的{n}000多积分被清零，之前没有收到任何通知。",
        reply="已致歉，告知核实积分记录后答复。",
        resolution="经核实为积分年度到期清零，已向顾客解释规则并作为关怀补回500积分。",
        resolution_type=R.EXPLANATION,
        root_cause="顾客误解",
    ),
    M(
        T.COMPLAINT,
        "会员积分 › 会员权益",
        subject="会员生日礼品没有领到",
        description="顾客生日当月到{store}领取会员生日礼，店员称礼品已发完。",
        reply="已致歉，告知将请门店运营部核实并补发。",
        resolution="已为顾客补发生日礼品并致歉。",
        resolution_type=R.COMPENSATION,
        cost=(20, 40),
        root_cause="流程缺陷",
        department="门店运营部",
        instructions="请核实{store}生日礼品库存，为顾客补发礼品。",
        answer="门店生日礼品备货不足，已补货并通知顾客到店领取。",
    ),
    M(
        T.COMPLAINT,
        "医保 › 医保结算异常",
        subject="刷医保卡被重复扣款",
        description="顾客{date}在{store}用医保个人账户支付购药，医保账户显示扣了两次款，要求退回多扣的钱。",
        reply="已致歉，告知将请门店核对医保结算记录，多扣部分原路退回。",
        resolution="经核对为收银系统网络中断后重复提交，已冲正多扣的医保款项并致歉。",
        resolution_type=R.REFUND,
        cost=(0, 0),
        root_cause="系统故障",
        department="门店运营部",
        instructions="请{store}核对当日医保结算流水，为顾客冲正重复扣款。",
        answer="已核实重复结算一笔，已在医保系统冲正，款项三个工作日内退回个人账户。",
    ),
    M(
        T.COMPLAINT,
        "门店服务 › 排队等候",
        subject="{store}收银排队时间太长",
        description="顾客称晚上7点在{store}排队结账等了20多分钟，只开了一个收银台，老人站着等很辛苦。",
        reply="已致歉，告知将请门店运营部调整高峰时段的收银安排。",
        resolution="门店已在晚高峰增开收银台并设置老人优先通道，已回访顾客致歉。",
        resolution_type=R.EXPLANATION,
        root_cause="流程缺陷",
        department="门店运营部",
        instructions="请{store}核查晚高峰收银排班，反馈改进措施。",
        answer="晚高峰只排了一名收银员，已调整为两人并增设老人优先通道。",
    ),
    # After-sales
    M(
        T.AFTER_SALES,
        "医疗器械 › 故障报修",
        subject="{device}无法开机",
        description="顾客{date}在{store}购买的{device}使用不到一个月就无法开机，换了电池也不行。",
        reply="已告知可在保修期内免费维修，请顾客将机器和小票带到门店。",
        resolution="已由厂家免费维修并送还顾客。",
        resolution_type=R.REPAIR,
        cost=(0, 0),
        root_cause="产品质量",
        department="采购部",
        instructions="请联系{device}厂家安排保修，确认维修周期。",
        answer="厂家确认为主板故障，保修期内免费维修，约5个工作日。",
        waits="请顾客携带机器和购物小票到店",
        weight=2,
    ),
    M(
        T.AFTER_SALES,
        "医疗器械 › 退换货",
        subject="{meter}测量数据不准要求换货",
        description="顾客称新买的{meter}连续测量结果相差很大，要求换一台。",
        reply="已告知7天内质量问题可换货，请顾客到店检测。",
        resolution="门店检测确认误差超标，已为顾客换新。",
        resolution_type=R.EXCHANGE,
        cost=(0, 0),
        root_cause="产品质量",
        waits="请顾客带机器到店检测",
    ),
    M(
        T.AFTER_SALES,
        "医疗器械 › 退换货",
        subject="多买了{drug}申请退货",
        description="顾客在{store}多买了两盒{drug}，未拆封，询问能否退货。",
        reply="已说明药品一经售出原则上不退换，未拆封且小票在7天内可特殊申请。",
        resolution="经店长审批为顾客办理了退货。",
        resolution_type=R.REFUND,
        cost=(20, 80),
        waits="请顾客携带未拆封药品和小票到店",
    ),
    M(
        T.AFTER_SALES,
        "配送 › 错发漏发",
        subject="收到的{drug}规格不对申请换货",
        description="顾客通过{platform}购买{drug}，收到的是小规格装，与下单规格不符。",
        reply="已致歉，告知将安排上门换货。",
        resolution="已上门更换为正确规格。",
        resolution_type=R.EXCHANGE,
        cost=(0, 15),
        root_cause="物流配送",
        department="物流配送部",
        instructions="请安排骑手上门换货，收回错发商品。",
        answer="已安排骑手今天下午上门换货。",
        order=True,
    ),
    # Suggestions
    M(
        T.SUGGESTION,
        "门店服务 › 营业时间",
        subject="建议延长夜间营业时间",
        description="顾客建议{store}延长到晚上10点营业，下班后买药不方便。",
        reply="感谢建议，已转门店运营部评估。",
        resolution="已转门店运营部评估，感谢顾客建议。",
    ),
    M(
        T.SUGGESTION,
        "会员积分 › 会员权益",
        subject="建议会员积分可以兑换体检服务",
        description="顾客建议会员积分除了抵现，还可以兑换血压、血糖等健康检测服务。",
        reply="感谢建议，已记录并反馈会员运营。",
        resolution="建议已反馈会员运营部门。",
    ),
    M(
        T.SUGGESTION,
        "处方与用药咨询",
        subject="建议小程序增加用药提醒功能",
        description="顾客家中老人每天要吃多种药，建议小程序增加按时服药提醒。",
        reply="感谢建议，已转信息部。",
        resolution="已转信息部纳入需求池。",
    ),
    M(
        T.SUGGESTION,
        "服务态度",
        subject="表扬{store}店员耐心细致",
        description="顾客来电表扬{store}的店员耐心讲解用药，还帮忙叫了出租车，希望给予表扬。",
        reply="感谢顾客的肯定，已转告门店。",
        resolution="已转门店店长，对店员进行表扬。",
    ),
    # Service requests
    M(
        T.SERVICE_REQUEST,
        "会员积分 › 会员权益",
        subject="申请修改会员绑定手机号",
        description="顾客原手机号已停用，申请将会员卡绑定的手机号改为新号码。",
        reply="已核实身份信息，告知需本人携带身份证到店办理。",
        resolution="顾客到店核验身份后已完成修改。",
        resolution_type=R.OTHER,
        waits="请顾客本人携带身份证到店",
    ),
    M(
        T.SERVICE_REQUEST,
        "配送 › 定期送药",
        subject="申请每月定期送药上门",
        description="顾客家中老人长期服用{drug}，申请每月固定日期送药上门。",
        reply="已登记需求，请物流配送部安排定期配送。",
        resolution="已开通每月定期送药服务。",
        resolution_type=R.OTHER,
        department="物流配送部",
        instructions="请为顾客开通每月定期送药，确认配送日期和地址。",
        answer="已开通，每月5日上午配送，首单已排期。",
    ),
    M(
        T.SERVICE_REQUEST,
        "门店服务 › 发票",
        subject="申请开具电子发票",
        description="顾客{date}在{store}消费，当时未开发票，现申请补开电子发票。",
        reply="已登记开票信息。",
        resolution="电子发票已发送至顾客邮箱。",
        resolution_type=R.OTHER,
        department="门店运营部",
        instructions="请{store}为顾客补开电子发票。",
        answer="发票已开具并发送。",
    ),
    M(
        T.SERVICE_REQUEST,
        "处方与用药咨询",
        subject="预约药师一对一用药指导",
        description="顾客患有高血压和糖尿病，同时服用五种药，希望预约药师做一次用药梳理。",
        reply="已为顾客预约周末上午在{store}由执业药师面谈。",
        resolution="药师已完成用药梳理并给出书面建议。",
        resolution_type=R.OTHER,
    ),
]

MAJOR_MATTERS = [
    M(
        T.COMPLAINT,
        "药品质量 › 过期药品",
        subject="误售过期降压药，老人服药后血压波动就医",
        description="顾客称父亲在{store}购买的{bp_drug}已过期半年，老人服用一周后血压波动到医院就诊，"
        "家属情绪激动，要求赔偿医疗费并公开道歉，表示已向消费者协会投诉。",
        reply="客诉专员已致电家属致歉，告知公司高度重视，质量管理部和门店店长将上门处理。",
        resolution="已上门致歉，赔偿医疗费、交通费及营养费共计{money}元；涉事门店停业整顿一天，"
        "全店近效期商品彻底排查。",
        resolution_type=R.COMPENSATION,
        cost=(1500, 3000),
        root_cause="流程缺陷",
        department="质量管理部",
        instructions="重大客诉：请立即封存{store}该批次{bp_drug}，核查效期管理记录，今天内出具调查结论。",
        answer="已封存同批次商品5盒；门店效期巡检记录连续三周缺失，责任人已处理。",
        weight=1,
    ),
    M(
        T.COMPLAINT,
        "药品质量 › 疑似假药",
        subject="服用{drug}后出现过敏反应，怀疑药品质量问题",
        description="顾客服用在{store}购买的{drug}后全身起红疹，已到医院就诊，怀疑药品有质量问题，"
        "要求检测并赔偿。",
        reply="客诉专员已致电慰问，告知已封存同批次药品送检。",
        resolution="送检结果合格，过敏系顾客对该成分过敏；出于关怀承担部分医疗费{money}元，顾客接受。",
        resolution_type=R.COMPENSATION,
        cost=(500, 1200),
        root_cause="其他",
        department="质量管理部",
        instructions="重大客诉：请封存该批次{drug}并送第三方检测，联系生产厂家。",
        answer="第三方检测结果符合标准，厂家确认说明书已提示该过敏风险。",
    ),
    M(
        T.COMPLAINT,
        "配送 › 错发漏发",
        subject="配送错发药品，顾客险些误服",
        description="顾客通过{platform}订购{drug}，收到的却是{drug2}，老人差点误服，家属非常愤怒。",
        reply="已致歉并立即安排收回错发药品，物流配送部正在核查。",
        resolution="已收回错发药品并补送正确药品，赔偿{money}元；打包环节实行双人复核。",
        resolution_type=R.COMPENSATION,
        cost=(300, 800),
        root_cause="物流配送",
        department="物流配送部",
        instructions="重大客诉：请立即收回错发药品，核查打包和出库记录，今天内反馈。",
        answer="打包员看错药品编码导致错发，已停岗培训，打包改为扫码复核。",
        order=True,
    ),
]

CHANNELS = [
    (Ticket.Channel.PHONE, 45),
    (Ticket.Channel.WECHAT, 20),
    (Ticket.Channel.WEB_CHAT, 12),
    (Ticket.Channel.STORE, 10),
    (Ticket.Channel.PLATFORM, 8),
    (Ticket.Channel.EMAIL, 3),
    (Ticket.Channel.LETTER, 2),
]
TYPES = [
    (T.CONSULTATION, 40),
    (T.COMPLAINT, 33),
    (T.AFTER_SALES, 10),
    (T.SERVICE_REQUEST, 10),
    (T.SUGGESTION, 7),
]
OBJECTIONS = [
    "顾客认为赔偿金额太低，要求重新处理",
    "顾客表示问题没有解决，药品还是没收到",
    "顾客不接受解释，要求门店书面道歉",
]


def matter_values(rng: random.Random, *, opened: dt.datetime, store: str) -> dict[str, str]:
    """What fills a matter's blanks ({drug}, {store}, {date}...) for a ticket opened then."""
    drug, drug2 = rng.sample(DRUGS, 2)
    bought = opened - dt.timedelta(days=rng.randint(1, 12))
    return {
        "drug": drug,
        "drug2": drug2,
        "rx_drug": rng.choice(RX_DRUGS),
        "bp_drug": rng.choice(BP_DRUGS),
        "kid_drug": rng.choice(KID_DRUGS),
        "supplement": rng.choice(SUPPLEMENTS),
        "device": rng.choice(DEVICES),
        "meter": rng.choice(METERS),
        "platform": rng.choice(PLATFORMS),
        "store": store,
        "date": f"{bought.month}月{bought.day}日",
        "n": str(rng.randint(2, 5)),
        "age": str(rng.randint(2, 9)),
        "money": "0",
    }


def _pick(rng: random.Random, table: Sequence[tuple[Any, float]]) -> Any:
    values, weights = zip(*table, strict=True)
    return rng.choices(values, weights=weights)[0]


def _fill(text: str, values: dict[str, str]) -> str:
    return text.format(**values) if text else ""


# --- The plan: what happens to each ticket and when ---------------------------------------------

# The hotline answers every day from 08:30 to 21:00.
DUTY_START, DUTY_END = dt.time(8, 30), dt.time(21, 0)
# The timer pass runs at these local times each day (every minute in production).
TIMER_TIMES = [dt.time(10, 5), dt.time(15, 35)]


@dataclass(order=True)
class Step:
    at: dt.datetime
    order: int
    action: str = field(compare=False)
    plan: "TicketPlan | None" = field(compare=False, default=None)
    args: dict[str, Any] = field(compare=False, default_factory=dict)


@dataclass
class TicketPlan:
    customer_id: int
    creator: str
    worker: str
    data: dict[str, Any]
    steps: list[Step] = field(default_factory=list)
    ticket_id: int | None = None
    assignee_id: int | None = None
    followup_id: int | None = None


class Planner:
    """Draws each ticket's story: its matter, customer, channel and the moments of each step."""

    def __init__(
        self,
        *,
        seed: int,
        now: dt.datetime,
        calendar: WorkCalendar,
        customers: Sequence[tuple[int, int | None]],
        stores: dict[int, str],
        store_managers: dict[int, str],
        config: DemoConfig,
    ):
        self.rng = random.Random(f"kefu-demo-tickets-{seed}")
        self.now = now
        self.calendar = calendar
        self.tz = calendar.tz
        self.customers = list(customers)
        self.by_store: dict[int, list[tuple[int, int | None]]] = {}
        for customer in self.customers:
            if customer[1] is not None:
                self.by_store.setdefault(customer[1], []).append(customer)
        self.store_managers = store_managers
        self.store_names = stores or {0: "门店"}
        self.config = config
        self.order = 0
        self.matters: dict[str, list[Matter]] = {}
        for matter in MATTERS:
            self.matters.setdefault(matter.type, []).append(matter)

    # Moments -----------------------------------------------------------------------------

    def on_duty(self, moment: dt.datetime) -> dt.datetime:
        """The moment, or the start of the hotline's next shift when it is closed then."""
        local = moment.astimezone(self.tz)
        if local.time() < DUTY_START:
            return dt.datetime.combine(local.date(), DUTY_START, self.tz) + self.jitter(20)
        if local.time() >= DUTY_END:
            day = local.date() + dt.timedelta(days=1)
            return dt.datetime.combine(day, DUTY_START, self.tz) + self.jitter(20)
        return moment

    def jitter(self, minutes: int) -> dt.timedelta:
        return dt.timedelta(minutes=self.rng.randint(1, minutes))

    def after(self, moment: dt.datetime, low: float, high: float) -> dt.datetime:
        """A hotline moment `low` to `high` minutes later."""
        return self.on_duty(moment + dt.timedelta(minutes=self.rng.uniform(low, high)))

    def office_after(self, moment: dt.datetime, low: float, high: float) -> dt.datetime:
        """`low` to `high` working minutes later on the company's calendar (departments)."""
        minutes = self.rng.uniform(low, high)
        return self.calendar.add(moment, dt.timedelta(minutes=minutes))

    def opened_at(self, days_ago: float) -> dt.datetime:
        day = (self.now - dt.timedelta(days=days_ago)).astimezone(self.tz).date()
        # Calls peak in the morning and after work.
        hour = self.rng.choice([8.6, 9, 9.5, 10, 10, 10.5, 11, 11, 14, 14.5, 15, 16, 17, 19, 20])
        start = dt.datetime.combine(day, dt.time(0), self.tz)
        moment = start + dt.timedelta(hours=hour, minutes=self.rng.randint(0, 29))
        return min(moment, self.now - dt.timedelta(minutes=self.rng.randint(5, 90)))

    def step(self, plan: TicketPlan, at: dt.datetime, action: str, **args: Any) -> dt.datetime:
        self.order += 1
        plan.steps.append(Step(at, self.order, action, plan, args))
        return at

    # Tickets -----------------------------------------------------------------------------

    def customer(self, *, store_id: int | None = None) -> tuple[int, int | None]:
        pool = self.by_store.get(store_id, []) if store_id else []
        pool = pool or self.customers
        return self.rng.choice(pool)

    def values(self, opened: dt.datetime, store_id: int | None) -> dict[str, str]:
        store = self.store_names.get(store_id) or self.rng.choice(list(self.store_names.values()))
        return matter_values(self.rng, opened=opened.astimezone(self.tz), store=store)

    def ticket(
        self, *, days_ago: float, matter: Matter | None = None, story: str = "", **extra: Any
    ) -> TicketPlan:
        rng = self.rng
        if matter is None:
            kind = _pick(rng, TYPES)
            matter = rng.choices(self.matters[kind], [m.weight for m in self.matters[kind]])[0]
        opened = self.opened_at(days_ago)
        channel = _pick(rng, CHANNELS)
        if matter.order:
            channel = rng.choice([Ticket.Channel.PLATFORM, Ticket.Channel.PHONE])
        creator = rng.choice(AGENTS)
        store_id = None
        if channel == Ticket.Channel.STORE and rng.random() < 0.6 and self.store_managers:
            store_id = rng.choice(sorted(self.store_managers))
            creator = self.store_managers[store_id]
        customer_id, customer_store = self.customer(store_id=store_id)
        values = self.values(opened, store_id or customer_store)
        money = rng.randint(*matter.cost) if matter.cost != (0, 0) else 0
        values["money"] = str(money)
        ticket_data: dict[str, Any] = {
            "type": matter.type,
            "channel": channel,
            "subject": _fill(matter.subject, values),
            "description": _fill(matter.description, values),
            "category": self.config.categories[matter.category].pk if matter.category else None,
            "customer": customer_id,
        }
        if matter.order:
            prefix = {"美团": "MT", "饿了么": "ELM", "京东到家": "JD"}.get(
                values["platform"], "XCX"
            )
            ticket_data["order_ref"] = f"{prefix}{opened:%Y%m%d}{rng.randrange(10**6):06d}"
        severity = extra.pop("severity", "")
        if matter.type == T.COMPLAINT:
            severity = severity or _pick(rng, [("normal", 78), ("urgent", 22)])
            ticket_data["severity"] = severity
        worker = SPECIALIST if matter.type == T.COMPLAINT else creator
        if worker not in AGENTS and worker != SPECIALIST:
            worker = rng.choice(AGENTS)  # a store manager opens it, customer service works it
        elif (
            matter.type != T.COMPLAINT
            and channel in ("phone", "web_chat", "wechat")
            and rng.random() < 0.7
        ):
            # Whoever took the call usually keeps it; the rest go round-robin.
            ticket_data["assignee"] = creator
        plan = TicketPlan(customer_id, creator, worker, ticket_data)
        self.step(plan, opened, "create")
        self.story(plan, matter, opened, values, severity=severity, story=story, **extra)
        return plan

    def story(
        self,
        plan: TicketPlan,
        matter: Matter,
        opened: dt.datetime,
        values: dict[str, str],
        *,
        severity: str,
        story: str,
        external: bool = False,
    ) -> None:
        """The steps after opening; steps later than now are dropped by the caller."""
        if story == "fresh":
            return
        rng = self.rng
        urgent = severity in ("urgent", "major")
        major = severity == "major"
        complaint = matter.type == T.COMPLAINT
        # First response: mostly in time, sometimes late (breaches make the SLA columns real).
        late = rng.random() < 0.12
        if major:
            first = (5, 25) if not late else (35, 90)
        elif urgent or matter.type == T.CONSULTATION:
            first = (3, 45) if not late else (70, 200)
        else:
            first = (10, 110) if not late else (130, 400)
        replied = self.after(opened, *first)
        if complaint and rng.random() < 0.5:
            started = opened + (replied - opened) * rng.uniform(0.1, 0.9)
            self.step(plan, max(started, opened + dt.timedelta(minutes=1)), "start")
        t = self.step(plan, replied, "reply", body=_fill(matter.reply, values))
        if external:
            moment = self.after(t, 60, 300)
            t = self.step(
                plan,
                moment,
                "escalate_external",
                reported_on=moment.astimezone(self.tz).date(),
            )
        if story == "waiting_customer" or (matter.waits and rng.random() < 0.6):
            reason = matter.waits or "请顾客补充购药小票照片"
            t = self.step(plan, self.after(t, 5, 60), "wait", reason=reason)
            if story == "waiting_customer":
                return
            if rng.random() < 0.5:
                t = self.step(
                    plan,
                    self.after(t, 60, 60 * 48),
                    "customer_message",
                    body=rng.choice(
                        ["照片已上传，请查收。", "我明天上午到店。", "小票找到了，已拍照。"]
                    ),
                )
            else:
                t = self.step(plan, self.after(t, 60, 60 * 30), "resume")
        if rng.random() < 0.25 and matter.department and not major:
            due = self.calendar.add(t, dt.timedelta(hours=rng.choice([2, 4, 8])))
            if due > t:
                t = self.step(plan, self.after(t, 5, 30), "callback", due_at=due)
                overdue = rng.random() < 0.15
                done = due + dt.timedelta(minutes=rng.randint(40, 180) if overdue else -10)
                self.step(plan, max(done, t + dt.timedelta(minutes=5)), "callback_done")
        handled_by = ""
        if matter.department and (complaint or rng.random() < 0.7 or story == "waiting_department"):
            handled_by = matter.department
            t = self.step(
                plan,
                self.after(t, 10, 120 if not urgent else 30),
                "hand_off",
                department=matter.department,
                instructions=_fill(matter.instructions, values),
            )
            if story == "waiting_department":
                return
            # Departments answer on office hours; one in five takes long enough to be urged.
            slow = rng.random() < 0.2
            window = (30, 180) if major else ((600, 1800) if slow else (60, 420))
            answered = self.office_after(t, *window)
            resolves = complaint and rng.random() < 0.25
            t = self.step(
                plan,
                answered,
                "answer",
                department=matter.department,
                answer=_fill(matter.answer, values),
                resolution=self.resolution(matter, values) if resolves else None,
            )
            if resolves:
                self.settle(plan, matter, t, values, resolved=True, handled_by=handled_by)
                return
            t = self.step(
                plan,
                self.after(t, 10, 120),
                "reply",
                body="已将" + matter.department + "的核查结果告知顾客，商定处理方案。",
            )
        if complaint and rng.random() < 0.3:
            t = self.step(plan, self.after(t, 5, 60), "note", body="已与门店店长电话核实经过。")
        if matter.type in (T.CONSULTATION, T.SUGGESTION):
            work = (5, 240)
        elif major:
            work = (60, 600)
        else:
            work = (60, 60 * 20)
        t = self.after(t, *work)
        self.settle(plan, matter, t, values, resolved=False, handled_by=handled_by)

    def settle(
        self,
        plan: TicketPlan,
        matter: Matter,
        t: dt.datetime,
        values: dict[str, str],
        *,
        resolved: bool,
        handled_by: str,
    ) -> None:
        """Resolve, have the customer accept (or object, once), close."""
        rng = self.rng
        complaint = matter.type == T.COMPLAINT
        resolution = self.resolution(matter, values)
        if not resolved:
            t = self.step(plan, t, "resolve", resolution=resolution)
        if complaint or matter.type == T.AFTER_SALES:
            t = self.after(t, 30, 60 * 30)
            if complaint and rng.random() < 0.08:
                t = self.step(plan, t, "reject", note=rng.choice(OBJECTIONS))
                t = self.step(plan, self.after(t, 30, 240), "reply", body="已与顾客重新沟通。")
                better = dict(resolution)
                better["resolution_summary"] += "顾客提出异议后，经协商追加补偿。"
                better["resolution_cost"] = str(Decimal(better["resolution_cost"] or 0) + 50)
                t = self.step(plan, self.after(t, 60, 60 * 16), "resolve", resolution=better)
                t = self.after(t, 30, 60 * 24)
            t = self.step(
                plan, t, "accept", note=rng.choice(["顾客表示满意", "顾客接受处理结果", ""])
            )
        close_delay = (10, 60 * 6) if complaint else (1, 60 * 30)
        self.step(plan, self.after(t, *close_delay), "close")

    def resolution(self, matter: Matter, values: dict[str, str]) -> dict[str, Any]:
        cost = values["money"] if matter.cost != (0, 0) else "0"
        root = self.config.root_causes.get(matter.root_cause)
        return {
            "resolution_type": matter.resolution_type,
            "resolution_summary": _fill(matter.resolution, values),
            "resolution_cost": cost if matter.type in (T.COMPLAINT, T.AFTER_SALES) else "",
            "root_cause": root.pk if root else "",
        }


def plan_tickets(
    *,
    seed: int,
    count: int,
    now: dt.datetime,
    calendar: WorkCalendar,
    customers: Sequence[tuple[int, int | None]],
    stores: dict[int, str],
    store_managers: dict[int, str],
    config: DemoConfig,
) -> list[TicketPlan]:
    """Every ticket's story, as steps up to `now`; the same inputs give the same plan."""
    planner = Planner(
        seed=seed,
        now=now,
        calendar=calendar,
        customers=customers,
        stores=stores,
        store_managers=store_managers,
        config=config,
    )
    rng = planner.rng
    plans: list[TicketPlan] = []
    # A few stories every demo should show, however small.
    special = max(1, count // 60)
    majors = max(1, count // 120)
    plans.append(
        planner.ticket(
            days_ago=rng.uniform(8, 12), matter=MAJOR_MATTERS[0], severity="major", external=True
        )
    )
    for i in range(majors):
        plans.append(
            planner.ticket(
                days_ago=rng.uniform(0.2, 40) if i else rng.uniform(0.3, 1.5),
                matter=MAJOR_MATTERS[1 + i % (len(MAJOR_MATTERS) - 1)],
                severity="major",
            )
        )
    for _ in range(special):
        department_matters = [m for m in MATTERS if m.department and m.type == T.COMPLAINT]
        plans.append(
            planner.ticket(
                days_ago=rng.uniform(0.3, 3),
                matter=rng.choice(department_matters),
                story="waiting_department",
            )
        )
        waiting_matters = [m for m in MATTERS if m.waits]
        plans.append(
            planner.ticket(
                days_ago=rng.uniform(0.5, 5),
                matter=rng.choice(waiting_matters),
                story="waiting_customer",
            )
        )
    for _ in range(max(1, count // 75)):
        plans.append(planner.ticket(days_ago=rng.uniform(0, 0.03), story="fresh"))
    while len(plans) < count:
        # More of them lately: the chain is growing, and the inbox has work in it.
        plans.append(planner.ticket(days_ago=DAYS * rng.random() ** 1.7))
    plans = plans[:count]
    for plan in plans:
        plan.steps = [s for s in plan.steps if s.at <= now]
    return plans


# After these, nothing on the ticket is left for the timers.
DONE_STEPS = ("resolve", "accept", "close")


def timer_moments(plans: Sequence[TicketPlan], *, now: dt.datetime, tz) -> list[dt.datetime]:
    """When the timer pass runs: a few times a day and at `now`, skipping the moments when no
    ticket is open (nothing can be due then, and a small demo loads faster)."""
    busy = sorted(
        (p.steps[0].at, p.steps[-1].at if p.steps[-1].action in DONE_STEPS else now)
        for p in plans
        if p.steps
    )
    if not busy:
        return []
    moments = []
    day = busy[0][0].astimezone(tz).date()
    while day <= now.astimezone(tz).date():
        for time in TIMER_TIMES:
            moment = dt.datetime.combine(day, time, tz)
            if moment <= now and any(start <= moment <= end for start, end in busy):
                moments.append(moment)
        day += dt.timedelta(days=1)
    moments.append(now)
    return moments


# --- Working the plan through the services --------------------------------------------------

# Rows the services stamp with the clock rather than with their `now`.
BACKDATED: list[tuple[type[Model], tuple[str, ...]]] = [
    (Notification, ("created_at",)),  # and read_at, see Runner.backdate
    (CustomerEvent, ("created_at",)),
    (FollowUp, ("created_at", "updated_at")),
    (TicketHandoff, ("created_at", "updated_at")),
    (ExternalEscalation, ("created_at",)),
    (Ticket, ("updated_at",)),
]


class Runner:
    """Carries out the steps in time order, with the timer pass in between."""

    def __init__(self, *, config: DemoConfig, users: dict[str, User]):
        # (the clock's time before a step, the step's moment), to backdate what it wrote
        self.marks: list[tuple[dt.datetime, dt.datetime]] = []
        self.config = config
        self.users = users
        self.by_id = {u.pk: u for u in users.values()}
        self.actions: dict[str, Callable[[Step, TicketPlan], None]] = {
            "create": self.create,
            "start": self.start,
            "reply": self.reply,
            "note": self.note,
            "wait": self.wait,
            "customer_message": self.customer_message,
            "resume": self.resume,
            "callback": self.callback,
            "callback_done": self.callback_done,
            "hand_off": self.hand_off,
            "answer": self.answer,
            "escalate_external": self.escalate_external,
            "resolve": self.resolve,
            "accept": self.accept,
            "reject": self.reject,
            "close": self.close,
        }

    def worker(self, plan: TicketPlan) -> User:
        if plan.assignee_id is not None:
            user = self.by_id.get(plan.assignee_id)
            if user is not None:
                return user
        return self.users[plan.worker]

    def run(self, plans: list[TicketPlan], timers: list[dt.datetime]) -> Counter:
        steps = [s for p in plans for s in p.steps]
        steps += [Step(moment, 0, "timers") for moment in timers]
        heapq.heapify(steps)
        done: Counter = Counter()
        started = timezone.now()
        while steps:
            step = heapq.heappop(steps)
            self.marks.append((timezone.now(), step.at))
            if step.action == "timers":
                for kind, n in services.ticket_timers_run(now=step.at).items():
                    done[f"timers.{kind}"] += n
                continue
            assert step.plan is not None
            self.actions[step.action](step, step.plan)
            done[step.action] += 1
        self.backdate(since=started)
        return done

    def backdate(self, *, since: dt.datetime) -> None:
        """Give the rows the services stamp with the clock (notifications, customer events,
        hand-offs, follow-ups...) the moment of the step that wrote them, and mark read what
        staff would have read by now: notifications older than a day or about done tickets."""
        reals = [real for real, _at in self.marks]
        last = self.marks[-1][1] if self.marks else since
        done = {
            f"/tickets/{pk}/"
            for pk in Ticket.objects.filter(status__in=Ticket.DONE_STATUSES).values_list(
                "pk", flat=True
            )
        }

        def moment(value: dt.datetime) -> dt.datetime:
            return self.marks[max(0, bisect.bisect_right(reals, value) - 1)][1]

        for model, fields in BACKDATED:
            recent = Q()
            for name in fields:
                recent |= Q(**{f"{name}__gte": since})
            extra = ("url",) if model is Notification else ()
            rows = list(model.objects.filter(recent).only("pk", *fields, *extra))
            for row in rows:
                for name in fields:
                    value = getattr(row, name)
                    if value is not None and value >= since:
                        setattr(row, name, moment(value))
            if model is Notification:
                fields = (*fields, "read_at")
                for row in rows:
                    if row.url in done or row.created_at < last - dt.timedelta(days=1):
                        row.read_at = row.created_at + dt.timedelta(minutes=20)
            model.objects.bulk_update(rows, fields, batch_size=500)

    def _track(self, plan: TicketPlan, ticket: Ticket) -> None:
        plan.assignee_id = ticket.assignee_id

    def create(self, step: Step, plan: TicketPlan) -> None:
        data_ = dict(plan.data)
        if "assignee" in data_:
            data_["assignee"] = self.users[data_["assignee"]].pk
        ticket = services.ticket_create(actor=self.users[plan.creator], data=data_, now=step.at)
        plan.ticket_id = ticket.pk
        self._track(plan, ticket)

    def start(self, step: Step, plan: TicketPlan) -> None:
        ticket = services.ticket_start(
            actor=self.worker(plan), ticket_id=plan.ticket_id, now=step.at
        )
        self._track(plan, ticket)

    def reply(self, step: Step, plan: TicketPlan) -> None:
        actor = self.worker(plan)
        channel = plan.data.get("channel", "phone")
        if channel in (Ticket.Channel.STORE, Ticket.Channel.LETTER, Ticket.Channel.PLATFORM):
            channel = Ticket.Channel.PHONE
        services.ticket_reply(
            actor=actor,
            ticket_id=plan.ticket_id,
            body=step.args["body"],
            channel=channel,
            now=step.at,
        )
        if plan.assignee_id is None:
            plan.assignee_id = actor.pk

    def note(self, step: Step, plan: TicketPlan) -> None:
        services.ticket_note(
            actor=self.worker(plan), ticket_id=plan.ticket_id, body=step.args["body"], now=step.at
        )

    def wait(self, step: Step, plan: TicketPlan) -> None:
        services.ticket_wait_customer(
            actor=self.worker(plan),
            ticket_id=plan.ticket_id,
            reason=step.args["reason"],
            now=step.at,
        )

    def customer_message(self, step: Step, plan: TicketPlan) -> None:
        services.ticket_customer_message(
            ticket_id=plan.ticket_id, body=step.args["body"], now=step.at
        )

    def resume(self, step: Step, plan: TicketPlan) -> None:
        services.ticket_resume(actor=self.worker(plan), ticket_id=plan.ticket_id, now=step.at)

    def callback(self, step: Step, plan: TicketPlan) -> None:
        followup = services.ticket_promise_callback(
            actor=self.worker(plan),
            ticket_id=plan.ticket_id,
            due_at=step.args["due_at"],
            note="已承诺回电告知处理进度",
            now=step.at,
        )
        plan.followup_id = followup.pk

    def callback_done(self, step: Step, plan: TicketPlan) -> None:
        followup_complete(
            actor=self.worker(plan),
            followup_id=plan.followup_id,
            outcome=FollowUp.Outcome.REACHED,
            outcome_note="已回电告知处理进度",
            now=step.at,
        )

    def hand_off(self, step: Step, plan: TicketPlan) -> None:
        actor = self.worker(plan)
        services.ticket_hand_off(
            actor=actor,
            ticket_id=plan.ticket_id,
            department_id=self.config.departments[step.args["department"]].pk,
            instructions=step.args["instructions"],
            now=step.at,
        )
        if plan.assignee_id is None:
            plan.assignee_id = actor.pk

    def answer(self, step: Step, plan: TicketPlan) -> None:
        resolution = step.args["resolution"]
        ticket = services.handoff_answer(
            actor=self.config.handlers[step.args["department"]],
            ticket_id=plan.ticket_id,
            answer=step.args["answer"],
            resolution=resolution,
            now=step.at,
        )
        self._track(plan, ticket)

    def escalate_external(self, step: Step, plan: TicketPlan) -> None:
        services.ticket_escalate_external(
            actor=self.worker(plan),
            ticket_id=plan.ticket_id,
            body="consumer_association",
            reported_on=step.args["reported_on"],
            reference=f"XH{step.args['reported_on']:%Y%m%d}017",
            notes="顾客家属向区消费者协会投诉，消协工作人员来电了解情况，要求五个工作日内书面答复。",
            now=step.at,
        )

    def resolve(self, step: Step, plan: TicketPlan) -> None:
        ticket = services.ticket_resolve(
            actor=self.worker(plan),
            ticket_id=plan.ticket_id,
            data=step.args["resolution"],
            now=step.at,
        )
        self._track(plan, ticket)

    def accept(self, step: Step, plan: TicketPlan) -> None:
        services.ticket_record_acceptance(
            actor=self.worker(plan),
            ticket_id=plan.ticket_id,
            accepted=True,
            note=step.args["note"],
            now=step.at,
        )

    def reject(self, step: Step, plan: TicketPlan) -> None:
        services.ticket_record_acceptance(
            actor=self.worker(plan),
            ticket_id=plan.ticket_id,
            accepted=False,
            note=step.args["note"],
            now=step.at,
        )

    def close(self, step: Step, plan: TicketPlan) -> None:
        services.ticket_close(actor=self.worker(plan), ticket_id=plan.ticket_id, now=step.at)


def tickets_load(*, seed: int, count: int, now: dt.datetime | None = None) -> Counter:
    """The ticket configuration, then `count` tickets of the last 60 days up to `now`, worked
    through the services; returns how many of each step ran. Needs the demo department's staff
    and customers (data.department_create and the customer import)."""
    now = (now or timezone.now()).replace(second=0, microsecond=0)
    with transaction.atomic():
        config = config_create()
        customers = list(
            Customer.objects.live()
            .exclude(status=Customer.Status.CLOSED)
            .order_by("number")
            .values_list("pk", "store_id")
        )
        if count <= 0 or not customers:
            return Counter()
        users = {u.username: u for u in User.objects.filter(is_active=True)}
        missing = [u for u in [*AGENTS, SPECIALIST] if u not in users]
        if missing:
            raise ValueError(f"The demo staff is missing: {', '.join(missing)}")
        return _tickets_run(
            seed=seed,
            count=count,
            now=now,
            calendar=work_calendar_get(),
            config=config,
            customers=customers,
            users=users,
        )


def _tickets_run(
    *,
    seed: int,
    count: int,
    now: dt.datetime,
    calendar: WorkCalendar,
    config: DemoConfig,
    customers: list[tuple[int, int | None]],
    users: dict[str, User],
) -> Counter:
    store_managers = {
        u.store_id: u.username
        for u in users.values()
        if u.role == Role.STORE_MANAGER and u.store_id is not None
    }
    stores = {s.pk: s.name.split("·")[-1] for s in Store.objects.order_by("code")}
    plans = plan_tickets(
        seed=seed,
        count=count,
        now=now,
        calendar=calendar,
        customers=customers,
        stores=stores,
        store_managers=store_managers,
        config=config,
    )
    runner = Runner(config=config, users=users)
    return runner.run(plans, timer_moments(plans, now=now, tz=calendar.tz))
