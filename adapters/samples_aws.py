"""Builders for the record-batch and EventBridge sample events (see ``samples``).

Each builder takes the resolved placeholder values and returns a fresh event in
exactly the shape Lambda delivers it: the keys and casing AWS documents, new ids
on every call, and timestamps of now in each service's own format.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import string
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote_plus

Values = Mapping[str, str]
Event = dict[str, Any]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_BASE32 = string.ascii_uppercase + "234567"  # the alphabet of IAM unique ids
_LOWER_ALNUM = string.ascii_lowercase + string.digits
_UPPER_ALNUM = string.ascii_uppercase + string.digits


# -- shared helpers (also used by samples_apigw) ----------------------------------------


def now() -> datetime:
    return datetime.now(UTC)


def iso_ms(at: datetime) -> str:
    """``2024-05-01T12:34:56.789Z``: S3 eventTime, SNS Timestamp."""
    return f"{at:%Y-%m-%dT%H:%M:%S}.{at.microsecond // 1000:03d}Z"


def iso_s(at: datetime) -> str:
    """``2024-05-01T12:34:56Z``: EventBridge time."""
    return f"{at:%Y-%m-%dT%H:%M:%S}Z"


def clf(at: datetime) -> str:
    """``01/May/2024:12:34:56 +0000``: API Gateway requestTime (English months, any locale)."""
    return f"{at.day:02d}/{_MONTHS[at.month - 1]}/{at.year}:{at:%H:%M:%S} +0000"


def epoch_ms(at: datetime) -> int:
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def partition(region: str) -> tuple[str, str]:
    """The ARN partition and DNS suffix of a region."""
    if region.startswith("cn-"):
        return "aws-cn", "amazonaws.com.cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov", "amazonaws.com"
    if region.startswith("us-isob-"):
        return "aws-iso-b", "sc2s.sgov.gov"
    if region.startswith("us-iso-"):
        return "aws-iso", "c2s.ic.gov"
    return "aws", "amazonaws.com"


def arn(service: str, v: Values, resource: str) -> str:
    return f"arn:{partition(v['region'])[0]}:{service}:{v['region']}:{v['account']}:{resource}"


def b64(nbytes: int) -> str:
    return base64.b64encode(secrets.token_bytes(nbytes)).decode()


def upper_hex(nchars: int) -> str:
    return secrets.token_hex((nchars + 1) // 2)[:nchars].upper()


def iam_id(prefix: str = "AIDA") -> str:
    """An IAM unique id such as ``AIDAIENQZJOLO23YVJ4VO`` (21 characters)."""
    return prefix + "".join(secrets.choice(_BASE32) for _ in range(21 - len(prefix)))


def lower_id(nchars: int) -> str:
    """API Gateway style ids: ``1a2b3c4d5e``."""
    return "".join(secrets.choice(_LOWER_ALNUM) for _ in range(nchars))


def owner_id() -> str:
    """An S3 owner's short canonical id such as ``A3I5XTEXAMAI3E``."""
    return "A" + "".join(secrets.choice(_UPPER_ALNUM) for _ in range(13))


def client_ip() -> str:
    return f"198.51.100.{secrets.randbelow(254) + 1}"


def trace_id(at: datetime) -> str:
    return f"Root=1-{int(at.timestamp()):08x}-{secrets.token_hex(12)}"


# -- S3 ---------------------------------------------------------------------------------


def _s3_record(v: Values, event_name: str, obj: dict[str, Any]) -> Event:
    at = now()
    bucket = v["bucket"]
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": v["region"],
                "eventTime": iso_ms(at),
                "eventName": event_name,
                "userIdentity": {"principalId": "AWS:" + iam_id()},
                "requestParameters": {"sourceIPAddress": client_ip()},
                "responseElements": {"x-amz-request-id": upper_hex(16), "x-amz-id-2": b64(56)},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": str(uuid.uuid4()),
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": owner_id()},
                        "arn": f"arn:{partition(v['region'])[0]}:s3:::{bucket}",
                    },
                    # S3 URL-encodes the key as a form value: spaces become '+', '/' stays.
                    "object": {"key": quote_plus(v["key"], safe="/"), **obj},
                },
            }
        ]
    }


def _sequencer() -> str:
    """Hex, growing with time, like ``005B21C13A6F24045E``."""
    return f"00{int(now().timestamp()):08X}{upper_hex(8)}"


def s3_put(v: Values) -> Event:
    obj = {"size": int(v["size"]), "eTag": secrets.token_hex(16), "sequencer": _sequencer()}
    return _s3_record(v, "ObjectCreated:Put", obj)


def s3_delete(v: Values) -> Event:
    return _s3_record(v, "ObjectRemoved:Delete", {"sequencer": _sequencer()})


# -- SQS --------------------------------------------------------------------------------


def sqs_receive_message(v: Values) -> Event:
    sent = epoch_ms(now()) - 40 - secrets.randbelow(200)
    body = v["body"]
    attributes = {
        "ApproximateReceiveCount": "1",
        "SentTimestamp": str(sent),
        "SenderId": iam_id(),
        "ApproximateFirstReceiveTimestamp": str(sent + 1 + secrets.randbelow(30)),
    }
    if v["queue"].endswith(".fifo"):  # FIFO queues add these three
        attributes["SequenceNumber"] = str(10**19 + secrets.randbelow(9 * 10**19))
        attributes["MessageGroupId"] = "1"
        attributes["MessageDeduplicationId"] = hashlib.sha256(body.encode()).hexdigest()
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "AQEB" + b64(132),
                "body": body,
                "attributes": attributes,
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": arn("sqs", v, v["queue"]),
                "awsRegion": v["region"],
            }
        ]
    }


# -- SNS --------------------------------------------------------------------------------


def sns_notification(v: Values) -> Event:
    topic_arn = arn("sns", v, v["topic"])
    subscription_arn = f"{topic_arn}:{uuid.uuid4()}"
    endpoint = f"https://sns.{v['region']}.{partition(v['region'])[1]}"
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": {
                    "Type": "Notification",
                    "MessageId": str(uuid.uuid4()),
                    "TopicArn": topic_arn,
                    "Subject": v["subject"] or None,  # a message published without one
                    "Message": v["message"],
                    "Timestamp": iso_ms(now()),
                    "SignatureVersion": "1",
                    "Signature": b64(256),  # an RSA-2048 signature's length
                    "SigningCertUrl": f"{endpoint}/SimpleNotificationService-"
                    f"{secrets.token_hex(16)}.pem",
                    "UnsubscribeUrl": f"{endpoint}/?Action=Unsubscribe"
                    f"&SubscriptionArn={subscription_arn}",
                    "MessageAttributes": {},
                },
            }
        ]
    }


# -- DynamoDB Streams -------------------------------------------------------------------


def _item(message: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {"Id": {"N": "101"}}
    if message is not None:
        item = {"Message": {"S": message}, **item}
    return item


def _item_size(item: Mapping[str, Any]) -> int:
    """DynamoDB's item size: names plus values (a number is about 1 byte per 2 digits)."""
    size = 0
    for name, value in item.items():
        ((kind, raw),) = value.items()
        size += len(name.encode())
        size += len(raw.encode()) if kind == "S" else (len(raw.lstrip("-")) + 1) // 2 + 1
    return size


def dynamodb_update(v: Values) -> Event:
    at = now()
    created = at - timedelta(days=1 + secrets.randbelow(90), seconds=secrets.randbelow(86400))
    label = f"{created:%Y-%m-%dT%H:%M:%S}.{created.microsecond // 1000:03d}"
    stream_arn = arn("dynamodb", v, f"table/{v['table']}/stream/{label}")
    sequence = 10**20 + secrets.randbelow(9 * 10**20)
    changes = [
        ("INSERT", "New item!", None),
        ("MODIFY", "This item has changed", "New item!"),
        ("REMOVE", None, "This item has changed"),
    ]
    records = []
    for name, new, old in changes:
        change: dict[str, Any] = {"ApproximateCreationDateTime": int(at.timestamp())}
        change["Keys"] = _item(None)
        if new is not None:
            change["NewImage"] = _item(new)
        if old is not None:
            change["OldImage"] = _item(old)
        sequence += 1 + secrets.randbelow(10**6)
        change["SequenceNumber"] = str(sequence)
        change["SizeBytes"] = sum(
            _item_size(change[k]) for k in ("Keys", "NewImage", "OldImage") if k in change
        )
        change["StreamViewType"] = "NEW_AND_OLD_IMAGES"
        records.append(
            {
                "eventID": uuid.uuid4().hex,
                "eventName": name,
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": v["region"],
                "dynamodb": change,
                "eventSourceARN": stream_arn,
            }
        )
    return {"Records": records}


# -- EventBridge ------------------------------------------------------------------------


def _eventbridge(
    v: Values, at: datetime, detail_type: str, source: str, resources: list[str], detail: Any
) -> Event:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": v["account"],
        "time": iso_s(at),
        "region": v["region"],
        "resources": resources,
        "detail": detail,
    }


def cloudwatch_scheduled_event(v: Values) -> Event:
    at = now().replace(second=0, microsecond=0)  # schedules fire on the minute
    rule = arn("events", v, f"rule/{v['rule']}")
    return _eventbridge(
        v, at, detail_type="Scheduled Event", source="aws.events", resources=[rule], detail={}
    )


def eventbridge_event(v: Values) -> Event:
    """``detail`` is JSON text; without one, an EC2 state change naming its instance."""
    if v["detail"]:
        detail, resources = json.loads(v["detail"]), []
    else:
        instance = "i-" + secrets.token_hex(9)[:17]
        detail = {"instance-id": instance, "state": "running"}
        resources = [arn("ec2", v, f"instance/{instance}")]
    return _eventbridge(v, now(), v["detail-type"], v["source"], resources, detail)
