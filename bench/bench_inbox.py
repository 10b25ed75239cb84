"""Inbox: the agent's chat pages with 10,000,000 messages on PostgreSQL.

A fresh PostgreSQL database (kefu_bench_inbox, created, migrated and dropped by this script) gets
the staff of bench_tickets (54 agents and specialists, leads), an inbox queue with 50 agents and
five channels (web chat, WeChat, e-mail, QQ webhook, hotline), then, with INSERT ... SELECT over
generate_series (not through the services):

- 200,000 customers with a phone each;
- 1,000,000 conversations over a year, newer ones more numerous: all closed (topic, outcome,
  a rating on a third) but the newest ~3,000 open across the 50 agents and ~800 waiting for one
  (offline messages among them), plus 20 conversations of 5,000 to 8,000 messages (half of them
  open), and their created / assigned / closed events;
- 10,000,000 messages in time order (so one conversation's messages are spread over the table
  as they are in real life), Chinese text of real lengths (2 to ~150 characters): the customer's
  questions with the channel's message id, the agents' answers, the greeting, a few notes;
- 100,000 calls.

The load drops the secondary indexes of conversations, messages and events, inserts in chunks of 100,000
conversations' messages, builds the indexes again and runs VACUUM ANALYZE: its time is printed
as inbox_load_seconds_<size>_pg. Then, in-process (server time, no network), ~200 requests each:

- inbox_list (selector): an agent's `mine`, `waiting`, `all` and `closed` views and a
  supervisor's `all` and `closed`, 50 rows each, evaluated;
- message_list (selector): the latest 100 messages of a conversation of 5,000+ messages or of a
  regular one, and a reconnect (`after_id`) in each;
- GET /inbox/ (the agent's inbox page), its other tabs (an agent's waiting and closed chats, a
  supervisor's all and closed: inbox_tabs_page), GET /inbox/<id>/ (a conversation page, half of
  them conversations of 5,000+ messages) and GET /api/v1/conversations/<id>/messages through the
  Django test client with a logged-in agent, when those routes exist ({"skipped": ...} if not).

Each figure carries the machine's load average: other work on the machine shows in them. The
queries of each page (count, slowest three) and EXPLAIN (ANALYZE, BUFFERS) of the hot queries go
to stderr, the plans with their SQL to var/bench/inbox-explain.txt.

--quick uses 100,000 messages (10,000 conversations, 2,000 customers). --keep keeps the
database for the next run instead of dropping it: reused while the generator is the same, with
new migrations applied (--rebuild loads it anew, e.g. after a migration was edited in place).

    .venv/bin/python bench/bench_inbox.py [--quick] [--messages N] [--requests N]
        [--keep [--rebuild]]
"""

import argparse
import hashlib
import os
import random
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_api import emit, log, percentile  # noqa: E402
from bench.bench_tickets import (  # noqa: E402
    PG_SERVER,
    label,
    pg_connect,
    pg_database_create,
    pg_database_state,
    pg_reachable,
    staff_create,
)

PG_DATABASE = "kefu_bench_inbox"
SEED = 17
# Bump when the generated data changes (a kept database is then built again).
GENERATOR_VERSION = 1
MESSAGES_PER_CONVERSATION = 10
CONVERSATIONS_PER_CUSTOMER = 5
AGENTS = 50
CHUNK_CONVERSATIONS = 100_000

SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = list(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红梅飞鑫波斌宇浩凯健俊帆帅旭宁龙林欣怡佳琪雪婷倩颖露瑶晶"
)

# What customers write: greetings, questions and details, from two characters to a paragraph.
CUSTOMER_TEXTS = [
    "你好",
    "在吗？",
    "好的，谢谢",
    "嗯嗯，明白了",
    "请问还在吗",
    "谢谢，辛苦了",
    "我想咨询一下阿莫西林胶囊怎么吃",
    "孩子三岁，发烧38度5，能吃布洛芬混悬液吗？",
    "请问你们人民路店几点关门？",
    "我昨天在小程序下的单，订单号KN20240612003，什么时候能送到？",
    "买的血压计开不了机，换了新电池也不行，能换吗？",
    "会员积分怎么兑换？我看积分有三千多了",
    "医生开的是硝苯地平控释片，你们店里有货吗？一次能买几盒？",
    "我妈妈有高血压，平时吃氨氯地平，现在感冒了能不能一起吃感冒灵颗粒？",
    "上周买的维生素C片打开发现已经过期了，生产日期是2021年的，你们怎么处理？",
    "送药上门的范围有哪些？我住在滨江区江南大道附近，大概多久能到？",
    "血糖仪的试纸有没有单独卖的？我用的是你们店里买的那款，型号记不住了，包装盒上写着GM-300。",
    "想问一下处方药在网上买需要上传处方吗？我只有医院开的纸质处方，拍照可以吗？",
    "你们家的阿胶块是正品吗？有没有检测报告？准备买两盒送长辈。",
    "我上次在解放路店买东西的时候店员态度很不好，我问了两遍用法她都不耐烦，希望你们处理一下。",
    "孕妇可以用开塞露吗？怀孕五个月，最近便秘比较严重，不敢乱用药。",
    "麻烦帮我查一下，会员日是每个月几号？折扣是全场都有还是只限部分商品？",
    "好的，那我明天上午过去门店拿，麻烦帮我留两盒，谢谢！",
    "家里老人用的制氧机一直报警，显示流量异常，说明书找不到了，请问怎么处理？需要寄回去修吗？",
]
# What agents answer: clear, polite, no vague words (000 在线咨询规范 8).
AGENT_TEXTS = [
    "您好，很高兴为您服务，请问有什么可以帮您？",
    "好的，请您稍等，我马上为您查询。",
    "感谢您的耐心等待。",
    "阿莫西林胶囊成人一次0.5克，每6到8小时一次，请遵医嘱服用，用药前请确认没有青霉素过敏史。",
    "三岁孩子体温超过38.5度可以按体重服用布洛芬混悬液，每次5毫升，两次用药间隔不少于6小时。如果持续高烧超过三天，请及时就医。",
    "人民路店营业时间是每天8:00到22:00，节假日照常营业。",
    "已为您查到订单，药品已由骑手取货，预计40分钟内送达，骑手电话稍后会短信发给您。",
    "非常抱歉给您带来不便，血压计在购买一年内可以免费换新，请您携带购买小票到任意门店办理。",
    "您的会员积分可以在小程序“会员中心-积分商城”兑换，100积分可抵扣1元，也可以兑换体温计、口罩等礼品。",
    "处方药需要上传清晰的处方照片，药师审核通过后才能发货，审核时间一般在15分钟内。",
    "已为您登记，门店会为您保留两盒，保留到明天晚上8点，到店报手机号即可取药。",
    "您反映的情况我已经记录下来，会转给门店负责人核实处理，24小时内给您回电答复。",
    "孕期用药需要特别谨慎，建议您先咨询产检医生；开塞露属于局部用药，一般认为孕期可以短期使用，但请不要长期依赖。",
    "每月8号和18号是会员日，全场非处方药9折，部分保健品8.8折，处方药不参加折扣。",
    "请您把报警时屏幕显示的代码发给我，我帮您确认是否需要返厂维修。",
    "不客气，祝您和家人身体健康，有需要随时联系我们。",
]
NOTE_TEXTS = [
    "顾客对青霉素过敏，已提醒",
    "已转门店负责人跟进，约定明天回电",
    "顾客情绪激动，注意安抚",
    "已登记换货，待门店确认库存",
]
GREETING = "您好，欢迎咨询康宁大药房，请问有什么可以帮您？"
TOPICS = [
    "用法用量咨询",
    "儿童用药咨询",
    "门店营业时间",
    "订单配送进度",
    "器械换货",
    "会员积分兑换",
    "处方药购买",
    "店员服务态度",
    "孕期用药咨询",
]
CHANNELS = [  # (code, kind, name, platform, greets)
    ("site", "web_chat", "官网在线咨询", "", True),
    ("wechat", "wechat", "微信公众号", "", True),
    ("qq", "webhook", "QQ客服", "QQ", False),
    ("mail", "email", "客服邮箱", "", False),
    ("hotline", "phone", "400客服热线", "", False),
]


def sizes(messages: int) -> dict[str, int]:
    conversations = max(1000, messages // MESSAGES_PER_CONVERSATION)
    customers = max(500, conversations // CONVERSATIONS_PER_CUSTOMER)
    return {
        "messages": messages,
        "conversations": conversations,
        "customers": customers,
        "open": max(100, round(conversations * 0.003)),
        "queued": max(20, round(conversations * 0.0008)),
        "long": 20 if messages >= 1_000_000 else 2,
        "calls": max(1000, conversations // 10),
    }


def fingerprint(size: dict[str, int]) -> str:
    """What a kept database was built from: the sizes and this generator's SQL. New migrations
    are applied to a kept database; --rebuild after an initial migration was edited in place."""
    digest = hashlib.sha256(
        f"{sorted(size.items())}|{GENERATOR_VERSION}|{PLAN_SQL}|{CONVERSATIONS_SQL}|"
        f"{MESSAGES_SQL}|{EVENTS_SQL}|{CUSTOMER_TEXTS}|{AGENT_TEXTS}".encode()
    )
    return digest.hexdigest()[:16]


# --- The data ---------------------------------------------------------------------------------

CUSTOMERS_SQL = """
INSERT INTO customers_customer (
    id, created_at, updated_at, number, name, status, level, gender, birthday, source,
    temperament, temperament_note, membership_card_no, member_since, notes, custom_fields,
    search_text, created_by_id, merged_into_id, store_id)
SELECT g, t, t, %(prefix)s || lpad(g::text, 8, '0'),
    (%(surnames)s::text[])[1 + floor(random() * cardinality(%(surnames)s::text[]))::int]
        || (%(given)s::text[])[1 + floor(random() * cardinality(%(given)s::text[]))::int]
        || CASE WHEN random() < 0.6 THEN (%(given)s::text[])[
            1 + floor(random() * cardinality(%(given)s::text[]))::int] ELSE '' END,
    CASE WHEN random() < 0.45 THEN 'member' WHEN random() < 0.6 THEN 'customer'
         ELSE 'prospect' END,
    CASE WHEN random() < 0.9 THEN 'normal' ELSE 'vip' END,
    CASE WHEN random() < 0.57 THEN 'female' ELSE 'male' END,
    NULL, 'phone', '', '', NULL, NULL, '', '{}'::jsonb, '', NULL, NULL,
    (%(stores)s::bigint[])[1 + floor(random() * cardinality(%(stores)s::bigint[]))::int]
FROM (SELECT g, %(now)s::timestamptz - random() * interval '3 years' AS t
      FROM generate_series(1, %(count)s) g) s
"""
PHONES_SQL = """
INSERT INTO customers_contactpoint (kind, value, label, is_primary, last4, created_at, customer_id)
SELECT 'phone', '+86139' || lpad(id::text, 8, '0'), '', true, right(lpad(id::text, 8, '0'), 4),
    created_at, id
FROM customers_customer
"""
# One row per conversation: its channel, customer, agent, start, length and pace. Ids follow
# the start, so the newest conversations are the open ones.
PLAN_SQL = """
CREATE TABLE kefu_bench_plan AS
WITH drawn AS (
    SELECT %(now)s::timestamptz - power(random(), 1.5) * interval '365 days' AS started,
        random() AS r_channel, random() AS r_n, random() AS r_gap, random() AS r_close
    FROM generate_series(1, %(conversations)s)
), numbered AS (
    SELECT row_number() OVER (ORDER BY started)::bigint AS id, d.* FROM drawn d
), sized AS (
    SELECT n.*,
        n.id = ANY(%(long_ids)s::bigint[]) AS is_long,
        CASE WHEN id > %(conversations)s - %(queued)s THEN 'queued'
             WHEN id > %(conversations)s - %(queued)s - %(open)s
                  OR (id = ANY(%(long_ids)s::bigint[]) AND id %% 2 = 0) THEN 'open'
             ELSE 'closed' END AS status,
        CASE WHEN r_channel < 0.35 THEN 1 WHEN r_channel < 0.75 THEN 2 WHEN r_channel < 0.85 THEN 3
             WHEN r_channel < 0.95 THEN 4 ELSE 5 END AS channel_no
    FROM numbered n
), paced AS (
    SELECT s.*,
        CASE WHEN is_long THEN 5000 + floor(r_n * 3000)::int
             WHEN status = 'queued' THEN 1 + floor(r_n * 3)::int
             ELSE 1 + floor(-ln(1 - r_n) * %(mean)s)::int END AS n,
        CASE WHEN is_long THEN interval '20 seconds' + r_gap * interval '60 seconds'
             ELSE interval '10 seconds' + r_gap * interval '170 seconds' END AS gap
    FROM sized s
)
SELECT id, status, is_long,
    (%(channels)s::bigint[])[channel_no] AS channel_id,
    channel_no <= 2 AS greets,
    CASE WHEN status = 'queued' THEN NULL
         ELSE (%(agents)s::bigint[])[1 + id %% cardinality(%(agents)s::bigint[])] END AS assignee_id,
    %(customer_low)s + (id * 7919) %% %(customers)s AS customer_id,
    n, gap,
    -- A conversation ends before now: a long or late one started earlier.
    least(started, %(now)s::timestamptz - (n - 1) * gap - interval '3 minutes') AS started,
    r_close
FROM paced
"""
CONVERSATIONS_SQL = """
INSERT INTO conversations_conversation (
    id, created_at, updated_at, status, subject, thread_key, visitor_token, is_offline,
    last_message_at, last_message_preview, waiting_since, wait_alert_level, greeted_at,
    away_replied_at, first_response_at, assigned_at, closed_at, topic, outcome, outcome_note,
    rating, rating_comment, rated_at, assignee_id, channel_id, closed_by_id, customer_id,
    identity_id, rated_agent_id, ticket_id, queue_id)
SELECT id, started, coalesce(closed_at, last_at), status,
    CASE WHEN channel_id = %(mail)s THEN '咨询：' || topic ELSE '' END, '',
    'bench-' || id,
    status = 'queued' AND r_close < 0.3,
    last_at,
    (%(customer_texts)s::text[])[1 + id %% cardinality(%(customer_texts)s::text[])],
    CASE WHEN status = 'queued' THEN last_at END,
    0,
    CASE WHEN greets THEN started END,
    NULL,
    CASE WHEN status <> 'queued' THEN started + interval '20 seconds' END,
    CASE WHEN status <> 'queued' THEN started END,
    closed_at,
    CASE WHEN status = 'closed' THEN topic ELSE '' END,
    CASE WHEN status <> 'closed' THEN ''
         WHEN r_close < 0.6 THEN 'answered' WHEN r_close < 0.75 THEN 'order'
         WHEN r_close < 0.88 THEN 'appointment' WHEN r_close < 0.93 THEN 'ticket'
         ELSE 'no_result' END,
    '',
    CASE WHEN status = 'closed' AND r_close < 0.33 THEN
        CASE WHEN r_close < 0.02 THEN 2 WHEN r_close < 0.05 THEN 3 WHEN r_close < 0.12 THEN 4
             ELSE 5 END END,
    '',
    CASE WHEN status = 'closed' AND r_close < 0.33 THEN closed_at + interval '1 minute' END,
    assignee_id, channel_id,
    CASE WHEN status = 'closed' THEN assignee_id END,
    customer_id, NULL,
    CASE WHEN status = 'closed' AND r_close < 0.33 THEN assignee_id END,
    NULL, %(queue)s
FROM (
    SELECT p.*, p.started + (p.n - 1) * p.gap AS last_at,
        CASE WHEN p.status = 'closed' THEN p.started + (p.n - 1) * p.gap + interval '2 minutes'
        END AS closed_at,
        (%(topics)s::text[])[1 + p.id %% cardinality(%(topics)s::text[])] AS topic
    FROM kefu_bench_plan p
) s
ORDER BY id
"""
# The messages of conversations lo..hi, numbered in time order from `base`.
MESSAGES_SQL = """
INSERT INTO conversations_message (
    id, conversation_id, channel_id, direction, kind, body, author_id, is_automatic, external_id,
    status, error, attachment, attachment_name, media_url, data, created_at, sent_at)
WITH m AS (
    SELECT p.id AS conversation_id, p.channel_id, p.assignee_id, s.k,
        p.started + (s.k - 1) * p.gap + s.jitter * interval '5 seconds' AS created_at,
        CASE WHEN s.k = 1 THEN 'in'
             WHEN s.k = 2 AND p.greets THEN 'out'
             WHEN p.assignee_id IS NULL THEN 'in'
             WHEN s.r < 0.48 THEN 'in' WHEN s.r < 0.50 THEN 'note' ELSE 'out' END AS direction,
        s.k = 2 AND p.greets AS automatic,
        s.r2, s.r3
    FROM kefu_bench_plan p
    CROSS JOIN LATERAL (
        SELECT k, random() AS r, random() AS r2, random() AS r3, random() AS jitter
        FROM generate_series(1, p.n) k
    ) s
    WHERE p.id BETWEEN %(lo)s AND %(hi)s
), numbered AS (
    SELECT m.*, %(base)s + row_number() OVER (ORDER BY created_at, conversation_id, k) AS mid
    FROM m
)
SELECT mid, conversation_id, channel_id, direction, 'text',
    CASE WHEN automatic THEN %(greeting)s
         WHEN direction = 'in' THEN
            (%(customer_texts)s::text[])[1 + floor(r2 * cardinality(%(customer_texts)s::text[]))::int]
            || CASE WHEN r3 < 0.25 THEN (%(customer_texts)s::text[])[
                1 + floor(r3 * 4 * cardinality(%(customer_texts)s::text[]))::int] ELSE '' END
         WHEN direction = 'note' THEN
            (%(note_texts)s::text[])[1 + floor(r2 * cardinality(%(note_texts)s::text[]))::int]
         ELSE (%(agent_texts)s::text[])[1 + floor(r2 * cardinality(%(agent_texts)s::text[]))::int]
    END,
    CASE WHEN direction <> 'in' AND NOT automatic THEN assignee_id END,
    automatic,
    CASE WHEN direction = 'in' THEN 'b' || mid ELSE '' END,
    CASE WHEN direction = 'in' THEN 'received' WHEN direction = 'note' THEN 'sent'
         WHEN r3 < 0.7 THEN 'read' ELSE 'delivered' END,
    '', '', '', '', '{}'::jsonb, created_at,
    CASE WHEN direction <> 'in' THEN created_at END
FROM numbered
ORDER BY mid
"""
EVENTS_SQL = """
INSERT INTO conversations_conversationevent (conversation_id, kind, actor_id, data, created_at)
SELECT id, 'created', NULL::bigint, '{}'::jsonb, created_at FROM conversations_conversation
UNION ALL
SELECT id, 'assigned', NULL::bigint, jsonb_build_object('to', assignee_id), assigned_at
FROM conversations_conversation WHERE assigned_at IS NOT NULL
UNION ALL
SELECT id, 'closed', closed_by_id, jsonb_build_object('topic', topic, 'outcome', outcome),
    closed_at
FROM conversations_conversation WHERE status = 'closed'
"""
CALLS_SQL = """
INSERT INTO conversations_callrecord (
    created_at, updated_at, customer_id, phone, direction, agent_id, started_at, answered_at,
    ended_at, result, recording_url, notes, external_id, callback_id, recorded_by_id)
SELECT t, t, c, '+86139' || lpad(c::text, 8, '0'),
    CASE WHEN r < 0.85 THEN 'in' ELSE 'out' END,
    CASE WHEN r < 0.9 THEN (%(agents)s::bigint[])[1 + g %% cardinality(%(agents)s::bigint[])] END,
    t, CASE WHEN r < 0.9 THEN t + interval '10 seconds' END,
    CASE WHEN r < 0.9 THEN t + interval '10 seconds' + random() * interval '8 minutes'
         ELSE t + interval '30 seconds' END,
    CASE WHEN r < 0.9 THEN 'answered' WHEN r < 0.97 THEN 'missed' ELSE 'dropped' END,
    '', '', 'bench-call-' || g, NULL, NULL
FROM (SELECT g, random() AS r,
        %(now)s::timestamptz - power(random(), 1.5) * interval '365 days' AS t,
        %(customer_low)s + floor(random() * %(customers)s)::bigint AS c
      FROM generate_series(1, %(count)s) g) s
"""


def secondary_indexes(cursor, table: str) -> list[tuple[str, str]]:
    """The indexes of `table` that no constraint owns: dropped for the load, built after it."""
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s "
        "AND indexname NOT IN (SELECT conname FROM pg_constraint)",
        [table],
    )
    return cursor.fetchall()


def config_create():
    """The inbox queue with the 50 agents and the five channels."""
    from kefu.accounts.models import User
    from kefu.accounts.roles import Role
    from kefu.conversations.models import AgentStatus, Channel, InboxQueue

    agents = list(User.objects.filter(role=Role.AGENT).order_by("pk")[:AGENTS])
    queue = InboxQueue.objects.create(name="在线咨询")
    queue.members.set(agents)
    queue.supervisors.set(User.objects.filter(role=Role.SUPERVISOR))
    channels = []
    for code, kind, name, platform, greets in CHANNELS:
        channels.append(
            Channel.objects.create(
                code=code,
                kind=kind,
                name=name,
                platform=platform,
                queue=queue,
                greeting=GREETING if greets else "",
            )
        )
    AgentStatus.objects.bulk_create(
        [AgentStatus(user=a, status=AgentStatus.Status.ONLINE, capacity=8) for a in agents]
    )
    return queue, channels, agents


def data_load(size: dict[str, int], now) -> float:
    """Everything above into the migrated, empty database; returns the seconds it took."""
    from django.db import connection, transaction

    from kefu.accounts.models import Store
    from kefu.core.models import Sequence
    from kefu.customers.services import NUMBER_PREFIX, NUMBER_SEQUENCE

    started = time.monotonic()
    with transaction.atomic():
        staff_create()
        queue, channels, agents = config_create()
    conversations, count = size["conversations"], size["messages"]
    rng = random.Random(SEED)
    closed_range = conversations - size["open"] - size["queued"]
    recent = range(closed_range - size["long"] * 50, closed_range)
    long_ids = sorted(rng.sample(recent, size["long"] // 2))
    long_ids += sorted(rng.sample(range(1, closed_range // 2), size["long"] - len(long_ids)))
    params = {
        "now": now,
        "prefix": NUMBER_PREFIX,
        "surnames": SURNAMES,
        "given": GIVEN,
        "stores": list(Store.objects.values_list("pk", flat=True)),
        "count": size["customers"],
        "conversations": conversations,
        "customers": size["customers"],
        "customer_low": 1,
        "open": size["open"],
        "queued": size["queued"],
        "long_ids": long_ids,
        "channels": [c.pk for c in channels],
        "mail": channels[3].pk,
        "agents": [a.pk for a in agents],
        "queue": queue.pk,
        "topics": TOPICS,
        "customer_texts": CUSTOMER_TEXTS,
        "agent_texts": AGENT_TEXTS,
        "note_texts": NOTE_TEXTS,
        "greeting": GREETING,
    }
    with connection.cursor() as cursor:
        cursor.execute("SET work_mem = '256MB'")
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute("SET synchronous_commit = off")
        # Foreign keys are right by construction: skip their per-row checks during the load.
        cursor.execute("SET session_replication_role = replica")
        step = time.monotonic()
        cursor.execute(CUSTOMERS_SQL, params)
        cursor.execute(PHONES_SQL)
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('customers_customer', 'id'), %s)",
            [size["customers"]],
        )
        Sequence.objects.update_or_create(
            name=NUMBER_SEQUENCE, defaults={"value": size["customers"]}
        )
        log(f"  {size['customers']:,} customers in {time.monotonic() - step:.0f} s")

        step = time.monotonic()
        # n = 1 + floor(X) with X exponential of mean μ averages μ + 1/2.
        mean = (count - 6500 * len(long_ids)) / (conversations - len(long_ids)) - 0.5
        cursor.execute(PLAN_SQL, {**params, "mean": mean})
        plan_adjust(cursor, count)
        dropped = {}
        for table in (
            "conversations_conversation",
            "conversations_message",
            "conversations_conversationevent",
        ):
            dropped[table] = secondary_indexes(cursor, table)
            for name, _definition in dropped[table]:
                cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute(CONVERSATIONS_SQL, params)
        log(f"  {conversations:,} conversations in {time.monotonic() - step:.0f} s")

        step = time.monotonic()
        base = 0
        for lo in range(1, conversations + 1, CHUNK_CONVERSATIONS):
            hi = min(conversations, lo + CHUNK_CONVERSATIONS - 1)
            cursor.execute(MESSAGES_SQL, {**params, "lo": lo, "hi": hi, "base": base})
            base += cursor.rowcount
            rate = base / (time.monotonic() - step)
            log(f"  {base:,} messages ({rate:,.0f}/s)")
        step = time.monotonic()
        cursor.execute(EVENTS_SQL)
        cursor.execute(CALLS_SQL, {**params, "count": size["calls"]})
        cursor.execute("DROP TABLE kefu_bench_plan")
        log(f"  events and {size['calls']:,} calls in {time.monotonic() - step:.0f} s")
        cursor.execute("SET session_replication_role = DEFAULT")
        step = time.monotonic()
        for indexes in dropped.values():
            for name, definition in indexes:
                moment = time.monotonic()
                cursor.execute(definition)
                log(f"  index {name} built in {time.monotonic() - moment:.1f} s")
        log(f"  indexes built in {time.monotonic() - step:.0f} s")
        for table in (
            "conversations_conversation",
            "conversations_message",
            "conversations_conversationevent",
        ):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )
        cursor.execute("CREATE TABLE kefu_bench_marker (fingerprint text, long_ids bigint[])")
        cursor.execute("INSERT INTO kefu_bench_marker VALUES ('', %s)", [long_ids])
    connection.close()  # the load's session settings (work_mem...) end with it
    step = time.monotonic()
    # As autovacuum leaves a table in steady use: visibility map set, statistics fresh.
    with pg_connect(connection.settings_dict["NAME"]) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("VACUUM ANALYZE")
    log(f"  VACUUM ANALYZE in {time.monotonic() - step:.0f} s")
    return time.monotonic() - started


def plan_adjust(cursor, count: int) -> None:
    """Make the planned message counts add up to `count` exactly: one more (or one less)
    message in as many regular conversations as the draw is off by."""
    cursor.execute("SELECT sum(n) FROM kefu_bench_plan")
    missing = count - cursor.fetchone()[0]
    while missing:
        cursor.execute(
            "UPDATE kefu_bench_plan SET n = n + %(sign)s WHERE id IN ("
            " SELECT id FROM kefu_bench_plan WHERE NOT is_long AND status <> 'queued'"
            " AND n + %(sign)s >= 1 ORDER BY random() LIMIT %(limit)s)",
            {"sign": 1 if missing > 0 else -1, "limit": abs(missing)},
        )
        missing -= cursor.rowcount if missing > 0 else -cursor.rowcount


def prepare(size: dict[str, int], *, keep: bool, rebuild: bool) -> tuple[str, float | None]:
    """A migrated database holding the data: a kept one when its fingerprint matches, else a
    fresh one. Returns its name and the load time (None when a kept one was reused)."""
    dbname = (
        PG_DATABASE
        if size["messages"] == 10_000_000
        else (f"{PG_DATABASE}_{label(size['messages'])}")
    )
    os.environ["KEFU_DATABASE_URL"] = f"{PG_SERVER}/{dbname}"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    wanted = fingerprint(size)
    if keep and not rebuild and pg_database_state(dbname) == wanted:
        log(f"using the kept database {dbname}")
        call_command("migrate", interactive=False, verbosity=0)
        return dbname, None
    pg_database_create(dbname, drop=True)
    call_command("migrate", interactive=False, verbosity=0)
    call_command("createcachetable", verbosity=0)
    log(
        f"loading {size['messages']:,} messages, {size['conversations']:,} conversations and "
        f"{size['customers']:,} customers into {dbname}"
    )
    seconds = data_load(size, timezone.now())
    with connection.cursor() as cursor:
        cursor.execute("UPDATE kefu_bench_marker SET fingerprint = %s", [wanted])
    log(f"loaded in {seconds:.0f} s")
    return dbname, seconds


# --- The measurements -------------------------------------------------------------------------


def timed(items, run) -> tuple[list[float], dict[str, list[float]]]:
    times: list[float] = []
    by_kind: dict[str, list[float]] = {}
    for kind, params in items:
        started = time.perf_counter()
        run(kind, params)
        elapsed = (time.perf_counter() - started) * 1000
        times.append(elapsed)
        by_kind.setdefault(kind, []).append(elapsed)
    return times, by_kind


def report(metric: str, size: dict[str, int], times, by_kind, **extra) -> None:
    tail = f"{label(size['messages'])}_messages_pg"
    common = {
        "requests": len(times),
        "messages": size["messages"],
        "db": "postgresql",
        # Other work on the machine shows in these figures: say how busy it was.
        "loadavg_1m": round(os.getloadavg()[0], 1),
        **extra,
    }
    by_kind_p95 = {k: round(percentile(v, 95), 1) for k, v in by_kind.items() if v}
    emit(f"{metric}_p50_ms_{tail}", round(percentile(times, 50), 1), "ms", **common)
    emit(
        f"{metric}_p95_ms_{tail}",
        round(percentile(times, 95), 1),
        "ms",
        p95_by_kind=by_kind_p95,
        **common,
    )


class Sample:
    """Who asks for what: agents with open chats, a supervisor, long and regular chats."""

    def __init__(self, rng: random.Random):
        from django.db import connection
        from django.db.models import Count, Q

        from kefu.accounts.models import User
        from kefu.accounts.roles import Role
        from kefu.conversations.models import Conversation, Message

        open_by_agent = (
            Conversation.objects.filter(status=Conversation.Status.OPEN)
            .values("assignee_id")
            .annotate(n=Count("id"))
        )
        self.agents = sorted(row["assignee_id"] for row in open_by_agent)
        self.supervisor = User.objects.filter(role=Role.SUPERVISOR).order_by("pk").first().pk
        with connection.cursor() as cursor:
            cursor.execute("SELECT long_ids FROM kefu_bench_marker")
            long_ids = cursor.fetchone()[0]
        self.long = list(
            Conversation.objects.filter(pk__in=long_ids).values_list("pk", "assignee_id", "status")
        )
        bounds = Conversation.objects.filter(status=Conversation.Status.CLOSED).order_by("pk")
        high = bounds.last().pk
        regular = []
        while len(regular) < 200:
            pk = rng.randint(1, high)
            row = (
                Conversation.objects.filter(pk=pk, status=Conversation.Status.CLOSED)
                .exclude(pk__in=[c for c, _a, _s in self.long])
                .values_list("pk", "assignee_id", "status")
                .first()
            )
            if row:
                regular.append(row)
        regular += list(
            Conversation.objects.filter(status=Conversation.Status.OPEN)
            .filter(~Q(pk__in=[c for c, _a, _s in self.long]))
            .values_list("pk", "assignee_id", "status")[:100]
        )
        self.regular = regular
        # A reconnecting client asks for what came after a message some 20 messages back.
        self.resume_from = {}
        for pk, _a, _s in [*self.long, *regular[:50]]:
            ids = list(
                Message.objects.filter(conversation_id=pk)
                .order_by("-id")
                .values_list("id", flat=True)[:20]
            )
            self.resume_from[pk] = ids[-1] - 1 if ids else 0
        self.rng = rng

    def conversation(self, *, long: bool) -> tuple[int, int]:
        """A conversation and the agent who may open it."""
        pk, assignee, _status = self.rng.choice(self.long if long else self.regular)
        return pk, assignee or self.rng.choice(self.agents)


def inbox_mix(sample: Sample, total: int) -> list[tuple[str, dict]]:
    kinds = ["mine", "mine", "waiting", "all", "closed", "all_supervisor", "closed_supervisor"]
    mix = []
    for i in range(total):
        kind = kinds[i % len(kinds)]
        user = (
            sample.supervisor if kind.endswith("_supervisor") else sample.rng.choice(sample.agents)
        )
        mix.append((kind, {"user": user, "view": kind.removesuffix("_supervisor")}))
    sample.rng.shuffle(mix)
    return mix


def conversation_mix(sample: Sample, total: int, kinds: list[str]) -> list[tuple[str, dict]]:
    mix = []
    for i in range(total):
        kind = kinds[i % len(kinds)]
        pk, user = sample.conversation(long=kind.startswith("long"))
        mix.append((kind, {"conversation": pk, "user": user}))
    sample.rng.shuffle(mix)
    return mix


def inbox_list_run(kind: str, params: dict) -> None:
    from kefu.accounts.models import User
    from kefu.conversations.selectors import inbox_list

    user = User.objects.get(pk=params["user"])
    rows = list(inbox_list(user=user, view=params["view"]))
    for row in rows:  # what the list shows of each row
        _ = (row.customer.name, row.channel.name, row.assignee_id)


def message_list_run(kind: str, params: dict, resume_from: dict[int, int]) -> None:
    from kefu.conversations.models import Conversation
    from kefu.conversations.selectors import message_list

    conversation = Conversation.objects.get(pk=params["conversation"])
    after_id = resume_from.get(conversation.pk, 0) if kind.endswith("resume") else 0
    message_list(conversation=conversation, after_id=after_id, limit=100)


def route_exists(path: str) -> bool:
    from django.urls import Resolver404, resolve

    try:
        resolve(path)
    except Resolver404:
        return False
    return True


class Pages:
    """The test client, one logged-in session per user, as a browser keeps its cookie."""

    def __init__(self):
        from django.test import Client

        self.client_class = Client
        self.clients = {}

    def get(self, user_id: int, path: str, **headers) -> None:
        from kefu.accounts.models import User

        client = self.clients.get(user_id)
        if client is None:
            client = self.client_class(HTTP_HOST="127.0.0.1")
            client.force_login(User.objects.get(pk=user_id))
            self.clients[user_id] = client
        response = client.get(path, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path}: {response.status_code} {response.content[:300]!r}")
        if getattr(response, "streaming", False):
            b"".join(response.streaming_content)


def page_queries(sample: Sample, pages: Pages) -> None:
    """The queries of each page as it is measured (agent, a conversation of 5,000+ messages):
    how many, and the slowest three, to stderr."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    pk, user = sample.conversation(long=True)
    supervisor = sample.supervisor
    paths = [
        (user, "/inbox/"),
        (supervisor, "/inbox/?view=all"),
        (supervisor, "/inbox/?view=closed"),
        (user, f"/inbox/{pk}/"),
        (user, f"/api/v1/conversations/{pk}/messages"),
    ]
    for user_id, path in paths:
        if not route_exists(path.split("?")[0]):
            continue
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            pages.get(user_id, path)
            elapsed = (time.perf_counter() - started) * 1000
        slowest = sorted(captured.captured_queries, key=lambda q: -float(q["time"]))[:3]
        lines = [f"  {float(q['time']) * 1000:7.1f} ms  {q['sql'][:300]}" for q in slowest]
        log(f"-- GET {path}: {elapsed:.0f} ms, {len(captured)} queries; slowest:")
        log("\n".join(lines))


def explain(sample: Sample) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the hot queries, to stderr and var/bench/inbox-explain.txt."""
    from django.db.models import Count

    from kefu.accounts.models import User
    from kefu.conversations.models import Conversation, Message
    from kefu.conversations.selectors import inbox_list

    agent = User.objects.get(pk=sample.agents[0])
    supervisor = User.objects.get(pk=sample.supervisor)
    long_pk = sample.long[0][0]
    queries = {
        f"message list of a conversation of {Message.objects.filter(conversation_id=long_pk).count():,}"
        " messages, latest 100": Message.objects.filter(conversation_id=long_pk)
        .select_related("author")
        .order_by("-id")[:100],
        "inbox mine (agent)": inbox_list(user=agent, view="mine"),
        "inbox waiting (agent)": inbox_list(user=agent, view="waiting"),
        "inbox all (agent)": inbox_list(user=agent, view="all"),
        "inbox closed (agent)": inbox_list(user=agent, view="closed"),
        "inbox all (supervisor)": inbox_list(user=supervisor, view="all"),
        "inbox closed (supervisor)": inbox_list(user=supervisor, view="closed"),
        "open load per agent (routing)": Conversation.objects.open()
        .filter(assignee_id__in=sample.agents)
        .values("assignee_id")
        .annotate(n=Count("id")),
    }
    parts, plans = [], []
    for title, queryset in queries.items():
        plan = queryset.explain(analyze=True, buffers=True)
        parts.append(f"-- {title}\n{queryset.query}\n\n{plan}\n")
        plans.append(f"-- {title}\n{plan}\n")
    out = ROOT / "var" / "bench" / "inbox-explain.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts))
    log("\n".join(plans))
    log(f"(the plans with their SQL: {out.relative_to(ROOT)})")


def measure(size: dict[str, int], requests: int) -> None:
    from django.db import connection

    rng = random.Random(SEED)
    sample = Sample(rng)
    log(
        f"{len(sample.agents)} agents with open chats, {len(sample.long)} conversations of "
        f"5,000+ messages, {len(sample.regular)} regular ones sampled"
    )
    warmup = 20

    mix = inbox_mix(sample, requests)
    timed(mix[:warmup], inbox_list_run)
    report("inbox_list", size, *timed(mix, inbox_list_run), page=50)

    mix = conversation_mix(sample, requests, ["long", "regular", "long_resume", "regular_resume"])

    def run_messages(kind: str, params: dict) -> None:
        message_list_run(kind, params, sample.resume_from)

    timed(mix[:warmup], run_messages)
    report("message_list", size, *timed(mix, run_messages), limit=100)

    pages = Pages()
    if route_exists("/inbox/"):
        mix = [("inbox", {"user": rng.choice(sample.agents)}) for _ in range(requests)]

        def run_inbox(kind: str, params: dict) -> None:
            pages.get(params["user"], "/inbox/")

        timed(mix[:warmup], run_inbox)
        report("inbox_page", size, *timed(mix, run_inbox), view="mine")
        # The other tabs: an agent's waiting and closed chats, a supervisor's all and closed.
        tabs = [("waiting", "agent"), ("closed", "agent"), ("all", "lead"), ("closed", "lead")]
        mix = []
        for i in range(requests):
            view, who = tabs[i % len(tabs)]
            user = sample.supervisor if who == "lead" else rng.choice(sample.agents)
            mix.append((f"{view}_{who}", {"user": user, "view": view}))

        def run_tab(kind: str, params: dict) -> None:
            pages.get(params["user"], f"/inbox/?view={params['view']}")

        timed(mix[:warmup], run_tab)
        report("inbox_tabs_page", size, *timed(mix, run_tab))
    else:
        skipped("inbox_page", size, "/inbox/ is not there yet")

    pk = sample.long[0][0]
    if route_exists(f"/inbox/{pk}/"):
        mix = conversation_mix(sample, requests, ["long", "regular"])

        def run_page(kind: str, params: dict) -> None:
            pages.get(params["user"], f"/inbox/{params['conversation']}/")

        timed(mix[:warmup], run_page)
        report("conversation_page", size, *timed(mix, run_page))
    else:
        skipped("conversation_page", size, "/inbox/<id>/ is not there yet")

    if route_exists(f"/api/v1/conversations/{pk}/messages"):
        mix = conversation_mix(sample, requests, ["long", "regular"])

        def run_api(kind: str, params: dict) -> None:
            pages.get(params["user"], f"/api/v1/conversations/{params['conversation']}/messages")

        timed(mix[:warmup], run_api)
        report("conversation_messages_api", size, *timed(mix, run_api))
    else:
        skipped(
            "conversation_messages_api",
            size,
            "GET /api/v1/conversations/<id>/messages is not in the API yet",
        )
    page_queries(sample, pages)
    explain(sample)
    connection.close()


def skipped(metric: str, size: dict[str, int], reason: str) -> None:
    emit(f"{metric}_p95_ms_{label(size['messages'])}_messages_pg", None, "ms", skipped=reason)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 messages")
    parser.add_argument("--messages", type=int, help="how many messages (default 10,000,000)")
    parser.add_argument("--requests", type=int, default=200, help="requests per measurement")
    parser.add_argument(
        "--keep", action="store_true", help="keep the database and reuse it next time"
    )
    parser.add_argument("--rebuild", action="store_true", help="with --keep: load it anew")
    args = parser.parse_args()
    # bench/run.py stops an overrunning script with SIGTERM: unwind so `finally` drops the db.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    size = sizes(args.messages or (100_000 if args.quick else 10_000_000))
    tail = f"{label(size['messages'])}_messages_pg"
    reason = pg_reachable()
    if reason:
        for metric in ("inbox_list", "message_list", "inbox_page", "conversation_page"):
            emit(f"{metric}_p95_ms_{tail}", None, "ms", skipped=reason)
        return 0
    os.environ.update(DJANGO_SETTINGS_MODULE="kefu.settings", KEFU_LOG_LEVEL="WARNING")
    os.environ.pop("KEFU_DEBUG", None)
    dbname = None
    try:
        dbname, seconds = prepare(size, keep=args.keep, rebuild=args.rebuild)
        if seconds is not None:
            emit(
                f"inbox_load_seconds_{tail}",
                round(seconds, 1),
                "s",
                messages=size["messages"],
                conversations=size["conversations"],
                customers=size["customers"],
            )
        measure(size, args.requests)
        return 0
    finally:
        from django.db import connections

        connections.close_all()
        if dbname and not args.keep:
            with pg_connect("postgres") as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            log(f"dropped {dbname}")


if __name__ == "__main__":
    sys.exit(main())
