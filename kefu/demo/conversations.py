"""The demo department's consultations (咨询): the online queue, its five channels, the team's quick
replies (话术), and two weeks of chats and hotline calls.

The chats are not inserted as rows: they are played through kefu.conversations.services with an
explicit `now`, step after step in the order they happened. The online team logs in at the
start of each working day and out at its end (agent_status_set), so a message left at night or
at the weekend gets the away reply, waits as an offline message and is handed out first at the
next login (000 在线咨询规范 1-2); during the day the greeting goes out at once and an agent
answers within the minute. Chats end with a consultation record (conversation_close) and, on the
web chat and WeChat, often a rating; a few leave a complaint ticket, a few are still open or
waiting at the end. Hotline calls go through call_record: a missed or dropped call gets its
callback task, which an agent works and records as an outgoing call (000 电话 11).

Everything is drawn from a `random.Random` seeded from the demo's seed; the dates are relative to
the moment of loading. Loading again adds nothing twice: the configuration is looked up by name
and code, and every customer message and call carries an id of the demo (`demo-<seed>-...`)
that the services store once.

The outgoing messages are marked delivered at the moment they were sent: the demo's WeChat,
mailbox and QQ settings are placeholders, so no provider could confirm them (and the worker
would otherwise try to deliver two weeks of answers when it starts).
"""

import bisect
import datetime as dt
import heapq
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Model, Q
from django.utils import timezone

from kefu.accounts.models import Store, User
from kefu.businesstime.clock import WorkCalendar
from kefu.businesstime.selectors import work_calendar_get
from kefu.conversations import services
from kefu.conversations.adapters import Inbound, Sender
from kefu.conversations.models import (
    CallRecord,
    Channel,
    ChannelIdentity,
    Conversation,
    InboxQueue,
    Message,
    QuickReply,
)
from kefu.customers.models import ContactPoint, Customer, CustomerEvent
from kefu.followups.models import FollowUp
from kefu.followups.services import followup_complete
from kefu.notifications.models import Notification
from kefu.tickets.models import Category
from kefu.tickets.models import Queue as TicketQueue

DAYS = 14
# Chats of the default demo (5,000 customers): one per 80 customers, at most this many.
DEFAULT_CONVERSATIONS = 60
CUSTOMERS_PER_CONVERSATION = 80
SMALL = 10  # fewer chats than this: no new customer, no ticket, none left open
QUEUE = "在线咨询"
ONLINE_AGENTS = ["agent06", "agent07", "agent08", "agent09", "agent10"]  # 在线组
HOTLINE_AGENTS = ["agent01", "agent02", "agent03", "agent04", "agent05"]  # 热线组
LEAD = "supervisor2"  # 在线组主管: owns the team's quick replies


# --- Configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoChannel:
    code: str
    kind: str
    name: str
    platform: str = ""
    greeting: str = ""
    away_message: str = ""
    has_prechat_form: bool = False
    has_survey: bool = True
    config: dict[str, str] = field(default_factory=dict)


K = Channel.Kind
HOURS = "工作日9:00-12:00、13:30-18:00"
CHANNELS = [
    # 000 在线咨询规范 5: greet within five seconds; 6: an auto-reply when nobody can answer.
    DemoChannel(
        "site",
        K.WEB_CHAT,
        "官网在线咨询",
        greeting="您好，欢迎光临康宁大药房在线咨询！我是您的专属客服，请问有什么可以帮您？",
        away_message=(
            f"您好，现在是非工作时间（在线客服{HOURS}）。请留下您的问题和联系电话，"
            "客服上班后会第一时间回复您；如需紧急用药指导，请拨打400-826-1128。"
        ),
        has_prechat_form=True,
    ),
    # The WeChat settings are placeholders: enter the official account's own appid, appsecret,
    # token and EncodingAESKey before pointing WeChat at Kefu.
    DemoChannel(
        "wechat",
        K.WECHAT,
        "康宁大药房公众号",
        greeting="您好，欢迎关注康宁大药房！在线客服为您服务，请直接发送您要咨询的问题。",
        away_message=(
            f"您好，客服暂时不在线（服务时间{HOURS}）。您的留言已收到，"
            "客服上线后会按留言顺序逐一回复，请您留意公众号消息。"
        ),
        config={"token": "kefu-demo-token", "appid": "", "appsecret": "", "aes_key": ""},
    ),
    DemoChannel(
        "mail",
        K.EMAIL,
        "客服邮箱",
        away_message=f"您好，邮件已收到。客服将在下一个工作日（{HOURS}）内回复您。",
        has_survey=False,
        config={"address": "service@kefu.localhost"},
    ),
    # The platform calls /channels/hook/qq/ signed with this secret; a demo value, not a secret.
    DemoChannel(
        "qq",
        K.WEBHOOK,
        "QQ在线客服",
        platform="QQ",
        greeting="您好，这里是康宁大药房QQ客服，请问有什么可以帮您？",
        away_message=f"您好，客服暂时不在线（服务时间{HOURS}），上线后会第一时间回复您。",
        has_survey=False,
        config={"secret": "kefu-demo-secret", "outbound_url": ""},
    ),
    DemoChannel("hotline", K.PHONE, "400客服热线", has_survey=False),
]

# (shortcut, title, text): the team's replies, clear and without vague words (000 规范 8).
QUICK_REPLIES = [
    (
        "hi",
        "问候",
        "{customer_name}您好，我是康宁大药房客服{agent_name}，很高兴为您服务，请问有什么可以帮您？",
    ),
    (
        "wait",
        "请稍等",
        "好的，这个问题需要为您查询一下，请您稍等1到2分钟，查到后马上回复您。",
    ),
    (
        "hours",
        "营业时间",
        "我们各门店每天8:00至22:00营业，节假日照常营业；在线客服服务时间为工作日9:00至12:00、"
        "13:30至18:00，其他时间可以留言，客服上班后第一时间回复。",
    ),
    (
        "bye",
        "结束语",
        "感谢您的咨询，祝您和家人身体健康！稍后请为本次服务打个分，您的评价是我们改进的动力。",
    ),
    (
        "order",
        "订单查询",
        "已为您查到订单{order_no}：药师已审核通过，药品今天发出，配送进度可以在小程序"
        "“我的订单”里查看，送达前骑手会电话联系您。",
    ),
]


@dataclass
class ChatConfig:
    queue: InboxQueue
    channels: dict[str, Channel]
    agents: list[User]
    hotline: list[User]
    lead: User | None


@transaction.atomic
def config_create() -> ChatConfig:
    """The online queue with the online team, the channels and the team's quick replies; what
    exists already is left as it is."""
    users = {u.username: u for u in User.objects.filter(is_active=True)}
    agents = [users[name] for name in ONLINE_AGENTS if name in users]
    lead = users.get(LEAD)
    queue, created = InboxQueue.objects.get_or_create(
        name=QUEUE, defaults={"strategy": InboxQueue.Strategy.ROUND_ROBIN}
    )
    if created:
        queue.members.set(agents)
        if lead is not None:
            queue.supervisors.set([lead])
    channels = {}
    for c in CHANNELS:
        channels[c.code], _created = Channel.objects.get_or_create(
            code=c.code,
            defaults={
                "kind": c.kind,
                "name": c.name,
                "platform": c.platform,
                "queue": queue,
                "greeting": c.greeting,
                "away_message": c.away_message,
                "has_prechat_form": c.has_prechat_form,
                "has_survey": c.has_survey,
                "config": c.config,
            },
        )
    if lead is not None:
        have = set(QuickReply.objects.filter(owner=None).values_list("shortcut", flat=True))
        for shortcut, title, body in QUICK_REPLIES:
            if shortcut not in have:
                services.quick_reply_save(
                    actor=lead, data={"shortcut": shortcut, "title": title, "body": body}, team=True
                )
    hotline = [users[name] for name in HOTLINE_AGENTS if name in users]
    return ChatConfig(queue, channels, agents, hotline, lead)


# --- What customers ask about ------------------------------------------------------------------

C, A, Q_, N = "c", "a", "q", "n"  # customer, agent, quick reply (by shortcut), internal note
OUTCOME = Conversation.Outcome


@dataclass(frozen=True)
class Chat:
    """One kind of consultation: where it happens, its record, and what was said."""

    channels: tuple[str, ...]
    topic: str
    outcome: str
    lines: tuple[tuple[str, str], ...]
    note: str = ""
    subject: str = ""  # e-mail
    ticket: str = ""  # a complaint ticket opened from the chat, with this subject
    ticket_category: str = ""  # a category of the demo's ticket configuration
    weight: int = 2


CHATS = [
    Chat(
        ("site", "wechat", "qq"),
        "{drug}用法用量",
        OUTCOME.ANSWERED,
        (
            (C, "你好，我想问一下{drug}怎么吃？"),
            (Q_, "hi"),
            (C, "医生开了{drug}，说明书字太小看不清，一天吃几次？"),
            (
                A,
                "{drug}请按医生处方服用；处方没有特别写明的话，成人一般{dose}。饭后服用可以减轻肠胃不适。",
            ),
            (C, "好的，可以和降压药一起吃吗？"),
            (
                A,
                "可以同时服用，建议两种药间隔半小时左右。如果服药后出现头晕、皮疹等情况，请停药并及时就医。",
            ),
            (C, "明白了，谢谢"),
            (Q_, "bye"),
        ),
        note="已告知用法用量及与降压药的服用间隔",
        weight=4,
    ),
    Chat(
        ("site", "wechat"),
        "儿童发热用药",
        OUTCOME.ANSWERED,
        (
            (C, "在吗？孩子3岁，发烧38.6度，家里有{kid_drug}，能吃吗？"),
            (
                A,
                "您好，3岁孩子体温超过38.5度可以服用{kid_drug}，请按包装上的体重对照表给药，两次用药至少间隔6小时，24小时内不超过4次。",
            ),
            (C, "孩子14公斤，吃多少？"),
            (
                A,
                "14公斤一次5毫升。同时请多给孩子喝水、减少衣物帮助散热。如果持续高烧超过3天，或者出现精神差、抽搐，请立即就医。",
            ),
            (C, "好的，谢谢你"),
            (Q_, "bye"),
        ),
        note="已按体重告知儿童退烧药剂量，提醒高烧3天以上就医",
        weight=3,
    ),
    Chat(
        ("site", "wechat", "qq"),
        "门店库存与预留",
        OUTCOME.APPOINTMENT,
        (
            (C, "你好，{store}有{drug}吗？"),
            (Q_, "wait"),
            (A, "已为您查询，{store}目前有货，库存12盒。需要为您预留吗？"),
            (C, "帮我留两盒，我明天上午过去拿"),
            (A, "好的，已为您预留两盒，保留到明天晚上8点，到店报手机尾号即可取药。{rx_hint}"),
            (C, "好的，谢谢"),
            (Q_, "bye"),
        ),
        note="已通知{store}预留两盒，顾客明天上午到店自取",
        weight=3,
    ),
    Chat(
        ("site", "wechat", "qq"),
        "订单配送进度",
        OUTCOME.ANSWERED,
        (
            (C, "我昨天在小程序下的单，订单号{order_no}，怎么还没发货？"),
            (Q_, "wait"),
            (Q_, "order"),
            (C, "好的，大概几点能到？"),
            (A, "同城配送一般在发货后2小时内送达，您的订单预计今天下午4点前送到。"),
            (C, "行，谢谢"),
            (Q_, "bye"),
        ),
        note="订单{order_no}已发货，已告知预计送达时间",
        weight=3,
    ),
    Chat(
        ("site", "wechat"),
        "会员积分兑换",
        OUTCOME.ANSWERED,
        (
            (C, "我的会员积分有{points}分，怎么用？"),
            (Q_, "hi"),
            (
                A,
                "积分可以在小程序“会员中心-积分商城”兑换礼品，也可以在门店结账时抵扣，100积分抵1元。",
            ),
            (C, "积分会过期吗？"),
            (
                A,
                "积分有效期到次年12月31日，今年获得的积分明年年底前用完就可以。每月8号、18号会员日积分双倍。",
            ),
            (C, "知道了"),
            (Q_, "bye"),
        ),
        note="已告知积分兑换方式和有效期",
    ),
    Chat(
        ("site", "wechat", "qq"),
        "处方药网上购买",
        OUTCOME.ORDER,
        (
            (C, "{rx_drug}网上能买吗？需要处方吗？"),
            (
                A,
                "{rx_drug}是处方药，下单时需要上传医院开具的处方照片，药师审核通过后发货，审核一般在15分钟内完成。",
            ),
            (C, "纸质处方拍照可以吗"),
            (
                A,
                "可以的，请确保医院名称、医生签名、药品名称和用量都拍清楚，处方有效期为开具后3天。",
            ),
            (C, "好的，我已经下单了，订单号{order_no}"),
            (Q_, "order"),
            (Q_, "bye"),
        ),
        note="顾客已上传处方下单，订单{order_no}",
        weight=3,
    ),
    Chat(
        ("site", "wechat"),
        "孕期用药咨询",
        OUTCOME.APPOINTMENT,
        (
            (C, "孕妇可以吃感冒药吗？怀孕5个月，有点鼻塞流鼻涕"),
            (
                A,
                "孕期用药需要特别谨慎，大部分复方感冒药孕妇不宜服用。轻微鼻塞可以先用生理盐水洗鼻、多喝温水、注意休息。",
            ),
            (C, "那要是发烧了怎么办？"),
            (
                A,
                "体温超过38度请及时到医院产科就诊。您也可以预约我们{store}的驻店药师一对一用药指导，需要帮您预约吗？",
            ),
            (C, "好的，帮我约周六上午"),
            (A, "已为您预约本周六上午10点，{store}的药师会提前一天电话和您确认。"),
            (Q_, "bye"),
        ),
        note="已预约周六上午10点{store}药师用药指导",
    ),
    Chat(
        ("site", "wechat", "qq"),
        "血压计故障换货",
        OUTCOME.TICKET,
        (
            (C, "上个月在你们店买的{device}开不了机，换了新电池也没用"),
            (A, "非常抱歉给您带来不便。请问是在哪家门店购买的？小票还在吗？"),
            (C, "{store}买的，小票还在"),
            (
                A,
                "{device}购买一年内非人为损坏可以免费换新。我这边为您登记换货，门店核实库存后会电话联系您。",
            ),
            (N, "顾客{device}无法开机，一年内质量问题，已登记换货"),
            (C, "好的，尽快啊"),
            (A, "已为您登记，门店会在24小时内给您回电安排换货，请保持电话畅通。"),
            (Q_, "bye"),
        ),
        note="已登记{device}换货，转门店处理",
        ticket="{device}无法开机要求换货",
        ticket_category="退换货",
        weight=1,
    ),
    Chat(
        ("site", "wechat"),
        "店员服务态度",
        OUTCOME.TICKET,
        (
            (C, "我要投诉，昨天在{store}买药，问了两遍用法店员都不耐烦，态度很差"),
            (A, "非常抱歉让您有了不好的体验，我代表公司向您道歉。请问您大概是几点到店的？"),
            (C, "下午5点多，一个戴眼镜的女店员"),
            (N, "顾客情绪较激动，已安抚，需门店核实当班店员"),
            (
                A,
                "您反映的情况我已经详细记录，会转给{store}负责人核实处理，24小时内给您回电答复处理结果。",
            ),
            (C, "好，我等你们电话"),
            (Q_, "bye"),
        ),
        note="投诉{store}店员态度，已转门店负责人，24小时内回电",
        ticket="投诉{store}店员服务态度",
        ticket_category="店员态度",
        weight=1,
    ),
    Chat(
        ("site", "wechat", "qq"),
        "送药上门范围",
        OUTCOME.ORDER,
        (
            (C, "你们能送药上门吗？我住在滨江区，腿脚不方便"),
            (A, "可以的，{store}可以为滨江区提供送药上门，满39元免配送费，下单后一般1小时内送达。"),
            (C, "怎么下单"),
            (A, "您可以在公众号菜单“在线购药”下单，也可以直接告诉我药品名称和数量，我为您代下单。"),
            (C, "帮我下单两盒{drug}"),
            (A, "已为您下单，订单号{order_no}，货到付款，骑手出发前会电话联系您。"),
            (Q_, "bye"),
        ),
        note="为行动不便顾客代下单送药上门，订单{order_no}",
    ),
    Chat(
        ("site", "wechat", "qq"),
        "营业时间",
        OUTCOME.ANSWERED,
        (
            (C, "你们几点下班"),
            (Q_, "hours"),
            (C, "好的"),
            (Q_, "bye"),
        ),
        weight=2,
    ),
    Chat(
        ("site", "wechat"),
        "用药禁忌",
        OUTCOME.ANSWERED,
        (
            (C, "我爸有高血压，平时吃{bp_drug}，感冒了能吃感冒灵颗粒吗？"),
            (
                A,
                "感冒灵颗粒含有对乙酰氨基酚和少量咖啡因，一般可以和{bp_drug}同时服用，但请不要同时再吃其他含对乙酰氨基酚的感冒药。",
            ),
            (C, "血压会不会升高？"),
            (
                A,
                "部分感冒药含伪麻黄碱，会升高血压，高血压患者要避开。感冒灵颗粒不含伪麻黄碱。服药期间请每天早晚各测一次血压，明显升高请停药就医。",
            ),
            (C, "好的，明白了"),
            (Q_, "bye"),
        ),
        note="高血压患者感冒用药，已提醒避开含伪麻黄碱药品",
    ),
    Chat(
        ("mail",),
        "开具电子发票",
        OUTCOME.ANSWERED,
        (
            (
                C,
                "您好：\n我在{store}购买了{supplement}，订单号{order_no}，需要开具电子发票，抬头是个人。\n谢谢！",
            ),
            (
                A,
                "您好：\n已为订单{order_no}开具电子发票，发票已发送到您的邮箱，请注意查收。如需修改抬头请回复本邮件。\n\n康宁大药房客服中心",
            ),
            (C, "收到了，谢谢！"),
        ),
        subject="申请开具电子发票（订单{order_no}）",
        note="已开具电子发票并发送到顾客邮箱",
    ),
    Chat(
        ("mail",),
        "企业团购咨询",
        OUTCOME.APPOINTMENT,
        (
            (
                C,
                "您好：\n我们公司想采购一批{supplement}作为员工福利，大约200份，请问团购有什么优惠？",
            ),
            (
                A,
                "您好：\n感谢您的信任。200份以上的团购可以享受8.5折，并提供免费配送和开具增值税专用发票。大客户经理会在明天上午与您电话联系，确认具体需求和报价。\n\n康宁大药房客服中心",
            ),
        ),
        subject="企业员工福利团购咨询",
        note="企业团购约200份，已转大客户经理明天上午回电",
        weight=1,
    ),
    Chat(
        ("site", "wechat", "qq"),
        "过期药品",
        OUTCOME.TICKET,
        (
            (C, "在{store}买的{drug}打开一看已经过期了！"),
            (A, "非常抱歉！请您拍一下包装上的生产日期和有效期发给我，我马上为您登记处理。"),
            (C, "有效期到上个月，你们怎么能卖过期药？"),
            (
                A,
                "这是我们的严重失误，非常抱歉。我已登记，门店会为您办理退货并按规定赔偿，质量管理部会核查门店库存，24小时内给您回电。",
            ),
            (N, "销售过期药品，已登记投诉，需质量管理部核查同批次库存"),
            (C, "行吧"),
            (Q_, "bye"),
        ),
        note="顾客购买到过期药品，已登记投诉转质量管理部",
        ticket="{store}售出过期{drug}",
        ticket_category="过期药品",
        weight=1,
    ),
    Chat(
        ("site", "wechat", "qq"),
        "医保支付",
        OUTCOME.ANSWERED,
        (
            (C, "你们店可以刷医保卡吗"),
            (
                A,
                "可以的，我们4家门店都是医保定点药店，支持刷社保卡和医保电子凭证，网上订单暂不支持医保支付。",
            ),
            (C, "好的谢谢"),
            (Q_, "bye"),
        ),
    ),
    Chat(
        ("site", "wechat"),
        "保健品咨询",
        OUTCOME.NO_RESULT,
        (
            (C, "{supplement}有什么功效？多少钱"),
            (A, "{supplement}属于保健食品，不能代替药物治疗。目前门店价格是{price}元，会员日9折。"),
            (C, "我再考虑一下"),
            (A, "好的，有需要随时联系我们。"),
        ),
        note="顾客咨询{supplement}价格，暂未购买",
    ),
]
# Chats still going on when the demo is loaded: the last message is the customer's.
OPEN_CHATS = [
    Chat(
        ("site", "wechat"),
        "",
        "",
        (
            (C, "你好，我想问一下{drug}饭前吃还是饭后吃？"),
            (Q_, "hi"),
            (C, "还有，吃药期间能喝酒吗"),
        ),
    ),
    Chat(
        ("site", "wechat", "qq"),
        "",
        "",
        (
            (C, "我的订单{order_no}显示已签收，但是我没收到药"),
            (Q_, "wait"),
            (A, "已为您联系配送员核实，请您稍等。"),
            (C, "好的，麻烦快一点，老人等着吃药"),
        ),
    ),
]

DRUGS = {
    "drug": ["阿莫西林胶囊", "蒙脱石散", "氯雷他定片", "奥美拉唑肠溶胶囊", "布洛芬缓释胶囊"],
    "kid_drug": ["布洛芬混悬液"],
    "rx_drug": ["阿托伐他汀钙片", "二甲双胍缓释片", "头孢克肟分散片", "硝苯地平控释片"],
    "bp_drug": ["苯磺酸氨氯地平片", "缬沙坦胶囊", "硝苯地平控释片"],
    "device": ["电子血压计", "血糖仪", "电子体温计", "雾化器"],
    "supplement": ["深海鱼油软胶囊", "钙尔奇D", "蛋白粉", "阿胶块"],
    "price": ["128", "168", "198", "238"],
}
DOSES = dict(
    zip(
        DRUGS["drug"],
        [
            "一次2粒，一天3次",
            "一次1袋，一天3次",
            "一次1片，一天1次",
            "一次1粒，一天1到2次",
            "一次1粒，一天2次",
        ],
        strict=True,
    )
)
RX_HINT = "这款是处方药，取药时请带上医院处方。"
NICKNAMES = [
    "阳光明媚",
    "小雨妈妈",
    "老张",
    "向日葵",
    "晴天",
    "平安是福",
    "Lily",
    "追风的人",
    "静待花开",
    "一路向北",
    "糖糖",
    "知足常乐",
]
RATING_COMMENTS = {
    5: ["回复很快，讲得很清楚", "客服很耐心，谢谢", "", "", ""],
    4: ["挺好的", "", ""],
    3: ["等了一会儿才回复", ""],
    2: ["问题还没解决"],
}

# --- Calls on the hotline ----------------------------------------------------------------------

CALL_NOTES = [
    "咨询{drug}用法用量，已解答",
    "咨询门店营业时间和地址",
    "查询订单配送进度，已告知预计送达时间",
    "咨询会员积分兑换，已说明",
    "咨询医保卡使用范围",
    "反映{store}排队时间长，已记录并致歉",
]
CALL_BOOKING = "预约药师用药指导，已登记"  # demo.visits books these callers into a store


# --- The plan ----------------------------------------------------------------------------------


@dataclass
class ChatPlan:
    index: int
    chat: Chat
    channel: str
    sender: Sender
    values: dict[str, str]
    closes: bool
    rating: int | None = None
    comment: str = ""
    conversation_id: int | None = None


@dataclass(order=True)
class Step:
    at: dt.datetime
    order: int
    action: str = field(compare=False)
    plan: Any = field(compare=False, default=None)
    args: dict[str, Any] = field(compare=False, default_factory=dict)


class Planner:
    """Draws the chats, calls and shifts of the last two weeks from the seed."""

    def __init__(self, *, seed: int, now: dt.datetime, calendar: WorkCalendar, customers, stores):
        self.rng = random.Random(seed * 7919 + 4)
        self.seed = seed
        self.now = now
        self.calendar = calendar
        self.customers = customers  # [(pk, name, phone, email)] by number
        self.stores = stores
        self.order = 0
        self.used: set[int] = set()

    def step(self, at: dt.datetime, action: str, plan: Any = None, **args: Any) -> Step:
        self.order += 1
        return Step(at, self.order, action, plan, args)

    def open_at(self, moment: dt.datetime) -> dt.datetime:
        """`moment` when the office is open, else when it opens next."""
        return self.calendar.add(moment, dt.timedelta())

    def start_moment(self, *, offline: bool) -> dt.datetime:
        rng, tz = self.rng, self.calendar.tz
        first = (self.now - dt.timedelta(days=DAYS)).astimezone(tz).date()
        for _ in range(100):
            day = first + dt.timedelta(days=rng.randrange(DAYS + 1))
            if offline:
                hour = (
                    rng.choice([7, 19, 20, 21, 22])
                    if self.calendar.is_workday(day)
                    else (rng.randrange(9, 22))
                )
            elif not self.calendar.is_workday(day):
                continue
            else:
                start, end = rng.choice(self.calendar.periods)
                hour = rng.randrange(start.hour, max(start.hour + 1, end.hour))
            moment = dt.datetime.combine(day, dt.time(hour, rng.randrange(60)), tz)
            moment += dt.timedelta(seconds=rng.randrange(60))
            if moment < self.now - dt.timedelta(minutes=30) and offline != self.calendar.is_open(
                moment
            ):
                return moment
        return self.now - dt.timedelta(hours=2)

    def customer(self, *, allow_new: bool) -> tuple[int | None, str, str, str]:
        """An archive customer not used yet (pk, name, phone, email), or (None, ...) for a new one."""
        if allow_new and self.rng.random() < 0.25:
            return None, self.rng.choice(NICKNAMES), "", ""
        for _ in range(20):
            row = self.rng.choice(self.customers)
            if row[0] not in self.used:
                self.used.add(row[0])
                return row
        return self.rng.choice(self.customers)

    def values(self, opened: dt.datetime) -> dict[str, str]:
        rng = self.rng
        values = {key: rng.choice(options) for key, options in DRUGS.items()}
        values["dose"] = DOSES[values["drug"]]
        values["store"] = rng.choice(self.stores)
        values["order_no"] = (
            f"KN{opened.astimezone(self.calendar.tz):%Y%m%d}{rng.randrange(1, 9999):04d}"
        )
        values["points"] = str(rng.randrange(8, 60) * 100)
        values["rx_hint"] = RX_HINT if rng.random() < 0.5 else ""
        return values

    def sender(self, channel: str, row: tuple[int | None, str, str, str]) -> Sender:
        rng = self.rng
        _pk, name, phone, email = row
        if channel == "site":  # the pre-chat form asks for a name and a phone
            return Sender(key=f"v-{rng.getrandbits(64):016x}", name=name, phone=phone)
        if channel == "wechat":  # a member who bound the phone in the member centre, or not
            openid = "o" + "".join(
                rng.choices(
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", k=27
                )
            )
            return Sender(key=openid, name=rng.choice(NICKNAMES), phone=phone)
        if channel == "qq":
            return Sender(
                key=str(rng.randrange(100_000_000, 3_000_000_000)), name=name, phone=phone
            )
        return Sender(key=email, name=name, email=email)

    def chats(self, count: int) -> tuple[list[ChatPlan], list[Step]]:
        rng = self.rng
        plans, steps = [], []
        with_email = [row for row in self.customers if row[3]]
        # Small demos (a few chats) add no customer and no ticket: only larger ones have
        # prospects from the chat, complaints taken as tickets and chats still going on.
        kinds = [c for c in CHATS if count >= SMALL or not c.ticket]
        for index in range(count):
            allow_new = count >= SMALL and index % 6 == 5
            still_open = count >= SMALL and index >= count - 3
            chat = (
                rng.choice(OPEN_CHATS)
                if still_open
                else rng.choices(kinds, [c.weight for c in kinds])[0]
            )
            channel = rng.choice(chat.channels)
            if channel == "mail" and not with_email:
                chat = CHATS[0]
                channel = "site"
            offline = not still_open and rng.random() < 0.2
            opened = (
                self.now - dt.timedelta(minutes=rng.randrange(8, 50))
                if still_open
                else (self.start_moment(offline=offline))
            )
            if channel == "mail":
                row = rng.choice(with_email)
            else:
                row = self.customer(allow_new=allow_new)
                if row[0] is None and channel == "site":
                    channel = "wechat"
            plan = ChatPlan(
                index=index,
                chat=chat,
                channel=channel,
                sender=self.sender(channel, row),
                values=self.values(opened),
                closes=not still_open,
            )
            if chat.outcome and channel in ("site", "wechat") and rng.random() < 0.7:
                plan.rating = rng.choices([5, 4, 3, 2], [62, 24, 10, 4])[0]
                plan.comment = rng.choice(RATING_COMMENTS[plan.rating])
            plans.append(plan)
            steps += self.chat_steps(plan, opened)
        return plans, steps

    def chat_steps(self, plan: ChatPlan, opened: dt.datetime) -> list[Step]:
        """The moments of one chat: customers write every half minute to two minutes, agents
        answer within the minute while the office is open, else when it opens."""
        rng = self.rng
        steps, moment, inbound = [], opened, 0
        previous = None
        for kind, text in plan.chat.lines:
            if previous is not None:
                if kind == C:
                    moment += dt.timedelta(seconds=rng.randrange(30, 150))
                else:
                    pause = rng.randrange(12, 50) if previous == C else rng.randrange(5, 25)
                    moment += dt.timedelta(seconds=pause)
                    if not self.calendar.is_open(moment):
                        moment = self.open_at(moment) + dt.timedelta(seconds=rng.randrange(60, 400))
            if kind == C:
                inbound += 1
                args = {"text": text, "external_id": f"demo-{self.seed}-{plan.index}-{inbound}"}
                steps.append(self.step(moment, "receive", plan, **args))
            elif kind == Q_:
                steps.append(self.step(moment, "quick_reply", plan, shortcut=text))
            elif kind == N:
                steps.append(self.step(moment, "note", plan, text=text))
            else:
                steps.append(self.step(moment, "send", plan, text=text))
            previous = kind
        if plan.closes:
            moment += dt.timedelta(seconds=rng.randrange(40, 120))
            if plan.chat.ticket:
                steps.append(self.step(moment, "ticket", plan))
                moment += dt.timedelta(seconds=rng.randrange(30, 90))
            steps.append(self.step(moment, "close", plan))
            if plan.rating is not None:
                moment += dt.timedelta(seconds=rng.randrange(10, 90))
                steps.append(self.step(moment, "rate", plan))
        return [s for s in steps if s.at <= self.now]

    def calls(self, count: int, agents: list[User]) -> list[Step]:
        """Hotline calls: most answered with a note; a missed or dropped one is called back."""
        rng, steps = self.rng, []
        for index in range(count):
            start = self.start_moment(offline=False)
            row = self.customer(allow_new=False)
            if index % 8 == 7:  # an unknown caller becomes a prospect
                phone = f"+86139{rng.randrange(10**8):08d}" if index >= 8 else row[2]
            else:
                phone = row[2]
            result = rng.choices(
                [CallRecord.Result.ANSWERED, CallRecord.Result.MISSED, CallRecord.Result.DROPPED],
                [70, 20, 10],
            )[0]
            books = index % 6 == 2  # every sixth caller books a pharmacist's consultation
            if books:
                result = CallRecord.Result.ANSWERED
            agent = rng.choice(agents)
            values = self.values(start)
            data = {
                "phone": phone,
                "direction": CallRecord.Direction.IN,
                "result": result,
                "started_at": start,
                "external_id": f"demo-{self.seed}-call-{index}",
            }
            if result == CallRecord.Result.ANSWERED:
                answered = start + dt.timedelta(seconds=rng.randrange(4, 15))  # 3 to 5 rings
                data.update(
                    agent=agent.pk,
                    answered_at=answered,
                    ended_at=answered + dt.timedelta(seconds=rng.randrange(60, 480)),
                    notes=(CALL_BOOKING if books else rng.choice(CALL_NOTES)).format(**values),
                )
            elif result == CallRecord.Result.DROPPED:
                answered = start + dt.timedelta(seconds=rng.randrange(4, 15))
                data.update(
                    agent=agent.pk,
                    answered_at=answered,
                    ended_at=answered + dt.timedelta(seconds=rng.randrange(20, 90)),
                    notes="通话中断",
                )
            else:
                data["ended_at"] = start + dt.timedelta(seconds=30)
            steps.append(self.step(start, "call", None, data=data, agent=agent))
            if result != CallRecord.Result.ANSWERED:
                back = start + dt.timedelta(minutes=rng.randrange(2, 12))
                if not self.calendar.is_open(back):
                    back = self.open_at(back) + dt.timedelta(minutes=rng.randrange(1, 10))
                if back <= self.now:
                    steps.append(
                        self.step(back, "call_back", None, call=data["external_id"], agent=agent)
                    )
        return [s for s in steps if s.at <= self.now]

    def shifts(self, agents: list[User]) -> list[Step]:
        """The online team logs in as the office opens and out as it closes, each workday."""
        tz, steps = self.calendar.tz, []
        first = (self.now - dt.timedelta(days=DAYS + 1)).astimezone(tz).date()
        day = first
        while day <= self.now.astimezone(tz).date():
            if self.calendar.is_workday(day):
                start = dt.datetime.combine(day, self.calendar.periods[0][0], tz)
                end = dt.datetime.combine(day, self.calendar.periods[-1][1], tz)
                for position, agent in enumerate(agents):
                    on = start - dt.timedelta(minutes=5 - position)
                    if on <= self.now:
                        steps.append(self.step(on, "status", None, agent=agent, status="online"))
                    if end <= self.now:
                        steps.append(self.step(end, "status", None, agent=agent, status="offline"))
            day += dt.timedelta(days=1)
        return steps


# --- Playing the plan through the services -----------------------------------------------------

# Rows the services stamp with the clock rather than with their `now`.
BACKDATED: list[tuple[type[Model], tuple[str, ...]]] = [
    (Message, ("created_at", "sent_at")),
    (Conversation, ("created_at", "updated_at")),
    (ChannelIdentity, ("created_at",)),
    (Customer, ("created_at", "updated_at")),
    (ContactPoint, ("created_at",)),
    (CustomerEvent, ("created_at",)),
    (CallRecord, ("created_at", "updated_at")),
    (FollowUp, ("created_at", "updated_at")),
    (Notification, ("created_at",)),  # and read_at, see Runner.backdate
]


class Runner:
    """Carries out the steps in time order through the services."""

    def __init__(self, *, config: ChatConfig, seed: int):
        self.config = config
        self.seed = seed
        self.marks: list[tuple[dt.datetime, dt.datetime]] = []
        self.replies = {r.shortcut: r for r in QuickReply.objects.filter(owner=None)}
        self.calls: dict[str, CallRecord] = {}
        self.ticket_data = _ticket_defaults()

    def run(self, steps: list[Step]) -> Counter:
        heapq.heapify(steps)
        done: Counter = Counter()
        since = timezone.now()
        while steps:
            step = heapq.heappop(steps)
            self.marks.append((timezone.now(), step.at))
            getattr(self, step.action)(step, step.plan)
            done[step.action] += 1
        self.backdate(since=since)
        return done

    def _conversation(self, plan: ChatPlan) -> Conversation | None:
        if plan.conversation_id is None:
            return None
        return Conversation.objects.select_related("customer").get(pk=plan.conversation_id)

    def _agent(self, conversation: Conversation, plan: ChatPlan) -> User:
        """Who answers: the chat's agent, else an agent of the team (the reply assigns it)."""
        if conversation.assignee_id is not None:
            return User.objects.get(pk=conversation.assignee_id)
        return self.config.agents[plan.index % len(self.config.agents)]

    def status(self, step: Step, plan: None) -> None:
        services.agent_status_set(
            actor=step.args["agent"], status=step.args["status"], capacity=5, now=step.at
        )

    def receive(self, step: Step, plan: ChatPlan) -> None:
        inbound = Inbound(
            sender=plan.sender,
            body=step.args["text"].format(**plan.values),
            external_id=step.args["external_id"],
            subject=plan.chat.subject.format(**plan.values) if plan.channel == "mail" else "",
        )
        # Loaded afresh, as each delivery's request does (its queue's round-robin position).
        channel = Channel.objects.select_related("queue").get(code=plan.channel)
        received = services.message_receive(channel=channel, inbound=inbound, now=step.at)
        plan.conversation_id = received.conversation.pk

    def send(self, step: Step, plan: ChatPlan) -> None:
        conversation = self._conversation(plan)
        if conversation is None or conversation.is_closed:
            return
        services.message_send(
            actor=self._agent(conversation, plan),
            conversation_id=conversation.pk,
            body=step.args["text"].format(**plan.values),
            now=step.at,
        )

    def quick_reply(self, step: Step, plan: ChatPlan) -> None:
        conversation = self._conversation(plan)
        if conversation is None or conversation.is_closed:
            return
        agent = self._agent(conversation, plan)
        body = services.quick_reply_render(
            self.replies[step.args["shortcut"]],
            conversation=conversation,
            agent=agent,
            order_no=plan.values["order_no"],
        )
        services.message_send(actor=agent, conversation_id=conversation.pk, body=body, now=step.at)

    def note(self, step: Step, plan: ChatPlan) -> None:
        conversation = self._conversation(plan)
        if conversation is None:
            return
        services.note_add(
            actor=self._agent(conversation, plan),
            conversation_id=conversation.pk,
            body=step.args["text"].format(**plan.values),
        )

    def ticket(self, step: Step, plan: ChatPlan) -> None:
        conversation = self._conversation(plan)
        if conversation is None or self.ticket_data is None or conversation.ticket_id:
            return
        category = plan.chat.ticket_category
        data = {
            **self.ticket_data,
            "subject": plan.chat.ticket.format(**plan.values),
            "store": _store_id(plan.values["store"]),
            "category": Category.objects.filter(name=category).values_list("pk", flat=True).first(),
        }
        services.conversation_open_ticket(
            actor=self._agent(conversation, plan),
            conversation_id=conversation.pk,
            data=data,
            now=step.at,
        )

    def close(self, step: Step, plan: ChatPlan) -> None:
        conversation = self._conversation(plan)
        if conversation is None or conversation.is_closed:
            return
        services.conversation_close(
            actor=self._agent(conversation, plan),
            conversation_id=conversation.pk,
            topic=plan.chat.topic.format(**plan.values),
            outcome=plan.chat.outcome,
            note=plan.chat.note.format(**plan.values),
            now=step.at,
        )

    def rate(self, step: Step, plan: ChatPlan) -> None:
        conversation = self._conversation(plan)
        if conversation is None or conversation.rated_at is not None:
            return
        if plan.channel == "wechat":  # the customer answers the survey with a digit
            services.message_receive(
                channel=Channel.objects.get(code="wechat"),
                inbound=Inbound(
                    sender=plan.sender,
                    body=str(plan.rating),
                    external_id=f"demo-{self.seed}-{plan.index}-rating",
                ),
                now=step.at,
            )
        else:  # the widget's stars
            services.conversation_rate(
                conversation_id=conversation.pk,
                rating=plan.rating,
                comment=plan.comment,
                now=step.at,
            )

    def call(self, step: Step, plan: None) -> None:
        agent = step.args["agent"]
        record, _created = services.call_record(actor=agent, data=step.args["data"], now=step.at)
        self.calls[record.external_id] = record

    def call_back(self, step: Step, plan: None) -> None:
        """The agent calls the customer back at once and closes the callback task."""
        missed = self.calls.get(step.args["call"])
        if missed is None or missed.callback_id is None:
            return
        agent = step.args["agent"]
        answered = step.at + dt.timedelta(seconds=8)
        services.call_record(
            actor=agent,
            data={
                "phone": missed.phone,
                "direction": CallRecord.Direction.OUT,
                "result": CallRecord.Result.ANSWERED,
                "agent": agent.pk,
                "started_at": step.at,
                "answered_at": answered,
                "ended_at": answered + dt.timedelta(minutes=3),
                "notes": "回拨未接来电，已为顾客解答",
                "external_id": f"{missed.external_id}-back",
            },
            now=step.at,
        )
        followup_complete(
            actor=agent,
            followup_id=missed.callback_id,
            outcome=FollowUp.Outcome.REACHED,
            outcome_note="已回拨，顾客问题已解答",
            now=answered + dt.timedelta(minutes=3),
        )

    def backdate(self, *, since: dt.datetime) -> None:
        """Give the rows the services stamp with the clock the moment of the step that wrote
        them; mark outgoing messages delivered when they were sent, and notifications older
        than a day read."""
        if not self.marks:
            return
        reals = [real for real, _at in self.marks]
        last = self.marks[-1][1]

        def moment(value: dt.datetime) -> dt.datetime:
            return self.marks[max(0, bisect.bisect_right(reals, value) - 1)][1]

        for model, fields in BACKDATED:
            recent = Q()
            for name in fields:
                recent |= Q(**{f"{name}__gte": since})
            if model is Message:
                # Messages carry the step's moment already; the queued replies still need marking.
                recent |= Q(direction=Message.Direction.OUT, status=Message.Status.QUEUED)
            extra = ("direction", "status") if model is Message else ()
            extra += ("read_at",) if model is Notification else ()
            rows = list(model.objects.filter(recent).only("pk", *fields, *extra))
            for row in rows:
                for name in fields:
                    value = getattr(row, name)
                    if value is not None and value >= since:
                        setattr(row, name, moment(value))
            changed = fields
            if model is Message:
                changed = (*fields, "status")
                for row in rows:
                    if row.direction == Message.Direction.OUT:
                        row.status = Message.Status.DELIVERED
                        row.sent_at = row.created_at
            if model is Notification:
                changed = (*fields, "read_at")
                for row in rows:
                    if row.created_at < last - dt.timedelta(days=1):
                        row.read_at = row.created_at + dt.timedelta(minutes=10)
            model.objects.bulk_update(rows, changed, batch_size=500)


def _ticket_defaults() -> dict[str, Any] | None:
    """The fields of a complaint opened from a chat, when the ticket configuration is loaded."""
    if not TicketQueue.objects.exists():
        return None
    return {"type": "complaint", "severity": "normal"}


def _store_id(short_name: str) -> int | None:
    return Store.objects.filter(name__endswith=short_name).values_list("pk", flat=True).first()


def conversations_load(
    *,
    seed: int,
    count: int = DEFAULT_CONVERSATIONS,
    calls: int | None = None,
    now: dt.datetime | None = None,
) -> Counter:
    """The chat configuration, then `count` chats and `calls` hotline calls (half as many by
    default) of the last two weeks up to `now`, worked through the services; returns how many
    of each step ran. Needs the demo department's staff and customers. Chats and calls loaded
    already (same seed) are left out."""
    now = (now or timezone.now()).replace(second=0, microsecond=0)
    calls = count // 2 if calls is None else calls
    with transaction.atomic():
        config = config_create()
        customers = _customers()
        if not customers or not config.agents or (count <= 0 and calls <= 0):
            return Counter()
        loaded = set(
            Message.objects.filter(external_id__startswith=f"demo-{seed}-").values_list(
                "external_id", flat=True
            )
        )
        loaded |= set(
            CallRecord.objects.filter(external_id__startswith=f"demo-{seed}-").values_list(
                "external_id", flat=True
            )
        )
        stores = [s.name.split("·")[-1] for s in Store.objects.order_by("code")] or ["人民路店"]
        planner = Planner(
            seed=seed, now=now, calendar=work_calendar_get(), customers=customers, stores=stores
        )
        plans, steps = planner.chats(count)
        skipped = {p.index for p in plans if f"demo-{seed}-{p.index}-1" in loaded}
        steps = [s for s in steps if s.plan is None or s.plan.index not in skipped]
        call_steps = planner.calls(calls, config.hotline or config.agents)
        steps += [
            s
            for s in call_steps
            if s.args.get("data", {}).get("external_id", s.args.get("call")) not in loaded
        ]
        if any(s.plan is not None for s in steps):
            steps += planner.shifts(config.agents)
        chats = len({s.plan.index for s in steps if s.plan is not None})
        done = Runner(config=config, seed=seed).run(steps)
        done["conversations"] = chats
        for agent in config.agents:  # nobody is logged in once the demo is loaded
            services.agent_status_set(actor=agent, status="offline", now=now)
        return done


def _customers() -> list[tuple[int, str, str, str]]:
    """Live archive customers with their primary phone and an e-mail, in number order."""
    phones: dict[int, str] = {}
    emails: dict[int, str] = {}
    for customer_id, kind, value in (
        ContactPoint.objects.filter(
            customer__merged_into=None, kind__in=[ContactPoint.Kind.PHONE, ContactPoint.Kind.EMAIL]
        )
        .exclude(customer__status=Customer.Status.CLOSED)
        .order_by("-is_primary", "pk")
        .values_list("customer_id", "kind", "value")
    ):
        (phones if kind == ContactPoint.Kind.PHONE else emails).setdefault(customer_id, value)
    return [
        (pk, name, phones[pk], emails.get(pk, ""))
        for pk, name in Customer.objects.filter(pk__in=phones)
        .order_by("number")
        .values_list("pk", "name")
    ]
