"""ESP webhooks: each provider's signature (or credentials) accepted when right and refused when
forged, altered or stale, and its documented payload shape read into Feedback.

The payloads are our own, modelled on each provider's documented samples, with addresses at
example.org; every key and certificate is made here. SES's signing certificate is served by a
real HTTPS server on 127.0.0.1 with a certificate from the private CA of the `tls` fixture.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from syndicate.feedback import Feedback, ForgedWebhook
from syndicate.feedback.esp import ESP_READERS, mailgun, postmark, sendgrid, ses

from .conftest import serving

NOW = datetime(2026, 12, 7, 8, 5, tzinfo=UTC)
STAMP = NOW - timedelta(seconds=30)


# --- Amazon SES via SNS ---------------------------------------------------------------------


class CertServer(ThreadingHTTPServer):
    """Serves one PEM certificate over https at any path ending in .pem, counting the fetches,
    and answers 200 at /confirm (a SubscribeURL on loopback), keeping every path asked for."""

    def __init__(self, context, pem: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _CertHandler)
        self.socket = context.wrap_socket(self.socket, server_side=True)
        self.pem, self.fetches, self.paths = pem, 0, list[str]()
        # A path of its own: a later server on a reused port must not find this one's cached key.
        self.name = f"SimpleNotificationService-{secrets.token_hex(8)}.pem"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _CertHandler(BaseHTTPRequestHandler):
    server: CertServer

    def do_GET(self) -> None:
        self.server.fetches += 1
        self.server.paths.append(self.path)
        found = self.path.endswith(".pem") or self.path.startswith("/confirm?")
        self.send_response(200 if found else 404)
        self.send_header("Content-Length", str(len(self.server.pem)))
        self.end_headers()
        self.wfile.write(self.server.pem)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def sns_key() -> tuple[rsa.RSAPrivateKey, bytes]:
    """An RSA key and a self-signed certificate for it, as SNS publishes at SigningCertURL."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.us-east-1.amazonaws.com")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime(2026, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2036, 1, 1, tzinfo=UTC))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def cert_server(tls, sns_key) -> Iterator[CertServer]:
    with serving(CertServer(tls[0], sns_key[1])) as server:
        yield server


@pytest.fixture
def ses_settings(tls, cert_server) -> ses.SesSettings:
    return ses.SesSettings(cert_hosts=[cert_server.host], ca_file=str(tls[1]))


TOPIC = "arn:aws:sns:us-east-1:123456789012:news-feedback"


def sns_message(key: rsa.RSAPrivateKey, cert_url: str, kind: str = "Notification", **fields) -> dict:
    """A signed SNS message. The string to sign is written out here from AWS's documentation,
    independently of the code under test: Name\\nvalue\\n for each field, in the documented order."""
    message = {
        "Type": kind,
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC,
        "Message": "{}",
        "Timestamp": STAMP.isoformat().replace("+00:00", "Z"),
        "SignatureVersion": "2",
        "SigningCertURL": cert_url,
        **fields,
    }
    if kind == "Notification":
        order = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        message.setdefault("Token", "2336412f37fb687f5d51e6e2425dacbba")
        message.setdefault("SubscribeURL", "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription")
        order = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    text = "".join(f"{name}\n{message[name]}\n" for name in order if name in message)
    digest = hashes.SHA1() if message["SignatureVersion"] == "1" else hashes.SHA256()
    message["Signature"] = base64.b64encode(key.sign(text.encode(), padding.PKCS1v15(), digest)).decode()
    return message


SES_BOUNCE = {
    "notificationType": "Bounce",
    "bounce": {
        "bounceType": "Permanent",
        "bounceSubType": "General",
        "bouncedRecipients": [
            {
                "emailAddress": "gone@example.org",
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 <gone@example.org>... User unknown",
            }
        ],
        "timestamp": "2026-12-07T08:04:00.000Z",
        "feedbackId": "0000018a-bounce-feedback-id",
    },
    "mail": {
        "timestamp": "2026-12-07T08:03:58.000Z",
        "source": "bounces@news.example.org",
        "messageId": "0000018a-ses-own-id-000000",
        "destination": ["gone@example.org"],
        "commonHeaders": {"messageId": "<digest-2026-49.ses1@news.example.org>"},
    },
}


def ses_body(message: dict) -> bytes:
    return json.dumps(message).encode()


def cert_url(server: CertServer) -> str:
    return f"https://{server.host}/{server.name}"


@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_a_signed_bounce_is_read(ses_settings, cert_server, sns_key, version):
    message = sns_message(
        sns_key[0], cert_url(cert_server), Message=json.dumps(SES_BOUNCE), SignatureVersion=version
    )
    assert ses.verify_and_read(ses_settings, {}, ses_body(message), NOW) == [
        Feedback(
            "hard",
            "gone@example.org",
            None,
            "<digest-2026-49.ses1@news.example.org>",
            "5.1.1 Permanent General smtp; 550 5.1.1 <gone@example.org>... User unknown",
            "ses",
        )
    ]


def test_ses_a_subject_is_signed_too_and_the_certificate_is_fetched_once(ses_settings, cert_server, sns_key):
    for subject in ("Amazon SES Email Event Notification", "Another subject"):
        message = sns_message(
            sns_key[0], cert_url(cert_server), Message=json.dumps(SES_BOUNCE), Subject=subject
        )
        assert len(ses.verify_and_read(ses_settings, {}, ses_body(message), NOW)) == 1
    assert cert_server.fetches == 1


def test_ses_transient_bounces_and_complaints(ses_settings, cert_server, sns_key):
    transient = {**SES_BOUNCE, "bounce": {**SES_BOUNCE["bounce"], "bounceType": "Transient"}}
    complaint = {
        "eventType": "Complaint",  # event publishing spells notificationType so
        "complaint": {
            "complainedRecipients": [{"emailAddress": "annoyed@example.org"}],
            "complaintFeedbackType": "abuse",
        },
        "mail": SES_BOUNCE["mail"],
    }
    delivery = {"notificationType": "Delivery", "mail": SES_BOUNCE["mail"], "delivery": {}}
    url = cert_url(cert_server)
    kinds = [
        [(f.kind, f.address, f.detail) for f in ses.verify_and_read(ses_settings, {}, ses_body(m), NOW)]
        for m in (
            sns_message(sns_key[0], url, Message=json.dumps(body))
            for body in (transient, complaint, delivery)
        )
    ]
    assert kinds[0][0][:2] == ("soft", "gone@example.org")
    assert kinds[1] == [("complaint", "annoyed@example.org", "complaint abuse")]
    assert kinds[2] == []


def test_ses_an_altered_message_is_refused(ses_settings, cert_server, sns_key):
    message = sns_message(sns_key[0], cert_url(cert_server), Message=json.dumps(SES_BOUNCE))
    message["Message"] = message["Message"].replace("gone@example.org", "someone-else@example.org")
    with pytest.raises(ForgedWebhook, match="signature does not match"):
        ses.verify_and_read(ses_settings, {}, ses_body(message), NOW)


def test_ses_a_signature_by_another_key_is_refused(ses_settings, cert_server):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    message = sns_message(other, cert_url(cert_server), Message=json.dumps(SES_BOUNCE))
    with pytest.raises(ForgedWebhook, match="signature does not match"):
        ses.verify_and_read(ses_settings, {}, ses_body(message), NOW)


def test_ses_a_stale_message_is_refused(ses_settings, cert_server, sns_key):
    old = (NOW - timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    message = sns_message(sns_key[0], cert_url(cert_server), Message=json.dumps(SES_BOUNCE), Timestamp=old)
    with pytest.raises(ForgedWebhook, match="stale"):
        ses.verify_and_read(ses_settings, {}, ses_body(message), NOW)


@pytest.mark.parametrize("stamp", ["2026-12-07T08:04:30", "yesterday"])
def test_ses_a_timestamp_that_is_no_instant_is_refused(ses_settings, cert_server, sns_key, stamp):
    message = sns_message(sns_key[0], cert_url(cert_server), Message=json.dumps(SES_BOUNCE), Timestamp=stamp)
    with pytest.raises(ForgedWebhook, match="Timestamp"):
        ses.verify_and_read(ses_settings, {}, ses_body(message), NOW)


@pytest.mark.parametrize(
    "url",
    [
        "https://sns.us-east-1.amazonaws.com.attacker.example/cert.pem",
        "https://attacker.example/sns.us-east-1.amazonaws.com/cert.pem",
        "http://sns.us-east-1.amazonaws.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com/cert.txt",
        "https://user@sns.us-east-1.amazonaws.com/cert.pem",
    ],
)
def test_ses_a_certificate_url_off_the_sns_hosts_is_refused_without_fetching(ses_settings, sns_key, url):
    message = sns_message(sns_key[0], url, Message=json.dumps(SES_BOUNCE))
    with pytest.raises(ForgedWebhook, match="SigningCertURL"):
        ses.verify_and_read(ses_settings, {}, ses_body(message), NOW)


def test_ses_a_certificate_server_without_a_trusted_tls_certificate_is_refused(cert_server, sns_key):
    """The loopback host is allowed but the CA is not given: TLS verification fails."""
    settings = ses.SesSettings(cert_hosts=[cert_server.host])
    message = sns_message(sns_key[0], cert_url(cert_server).replace(".pem", "-x.pem"), Message="{}")
    with pytest.raises(ForgedWebhook, match="cannot be fetched"):
        ses.verify_and_read(settings, {}, ses_body(message), NOW)


def test_ses_another_topic_is_refused(tls, cert_server, sns_key):
    settings = ses.SesSettings(
        cert_hosts=[cert_server.host], ca_file=str(tls[1]), topic_arns=[TOPIC + "-other"]
    )
    message = sns_message(sns_key[0], cert_url(cert_server), Message=json.dumps(SES_BOUNCE))
    with pytest.raises(ForgedWebhook, match="topic"):
        ses.verify_and_read(settings, {}, ses_body(message), NOW)


def test_ses_a_subscription_confirmation_is_confirmed_by_visiting_its_url(ses_settings, cert_server, sns_key):
    visit = f"https://{cert_server.host}/confirm?Action=ConfirmSubscription&Token=2336412f"
    message = sns_message(
        sns_key[0],
        cert_url(cert_server),
        "SubscriptionConfirmation",
        Message="To confirm...",
        SubscribeURL=visit,
    )
    verified = ses.verify(ses_settings, {}, ses_body(message), NOW)
    assert verified.type == "SubscriptionConfirmation" and verified.subscribe_url == visit
    assert ses.verify_and_read(ses_settings, {}, ses_body(message), NOW) == []
    assert cert_server.paths[-1] == "/confirm?Action=ConfirmSubscription&Token=2336412f"
    message["SubscribeURL"] = "https://attacker.example/"  # signed for confirmations
    with pytest.raises(ForgedWebhook, match="signature"):
        ses.verify(ses_settings, {}, ses_body(message), NOW)


@pytest.mark.parametrize(
    "visit", ["https://attacker.example/?Action=ConfirmSubscription", "http://sns.us-east-1.amazonaws.com/"]
)
def test_ses_a_signed_subscribe_url_off_sns_or_without_tls_is_never_visited(
    ses_settings, cert_server, sns_key, visit
):
    message = sns_message(sns_key[0], cert_url(cert_server), "SubscriptionConfirmation", SubscribeURL=visit)
    with pytest.raises(ForgedWebhook, match="not an https URL on an SNS host"):
        ses.verify_and_read(ses_settings, {}, ses_body(message), NOW)
    assert not [path for path in cert_server.paths if "Action" in path]


@pytest.mark.parametrize(
    ("body", "check"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not an SNS message"),
        (b'{"Type": "Other"}', "type"),
        (b'{"Type": "Notification", "SignatureVersion": "3"}', "SignatureVersion"),
        (b'{"Type": "Notification", "SignatureVersion": "2", "Signature": "@@"}', "base64"),
    ],
)
def test_ses_malformed_bodies_are_refused(ses_settings, body, check):
    with pytest.raises(ForgedWebhook, match=check):
        ses.verify_and_read(ses_settings, {}, body, NOW)


# --- Postmark -------------------------------------------------------------------------------

POSTMARK = postmark.PostmarkSettings(username="hook-user", password="s3cret-pass-do-not-print")
POSTMARK_BOUNCE = {
    "RecordType": "Bounce",
    "ID": 4323372036854775807,
    "Type": "HardBounce",
    "TypeCode": 1,
    "Name": "Hard bounce",
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
    "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
    "Email": "gone@example.org",
    "BouncedAt": "2026-12-07T08:04:00Z",
    "Inactive": True,
    "MessageStream": "outbound",
}


def basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_postmark_a_bounce_with_the_right_credentials_is_read():
    body = json.dumps(POSTMARK_BOUNCE).encode()
    assert postmark.verify_and_read(POSTMARK, basic("hook-user", "s3cret-pass-do-not-print"), body, NOW) == [
        Feedback(
            "hard",
            "gone@example.org",
            None,
            None,
            "HardBounce smtp;550 5.1.1 The email account that you tried to reach does not exist.",
            "postmark",
        )
    ]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"Type": "SoftBounce"}, "soft"),
        ({"Type": "Transient"}, "soft"),
        ({"Type": "SpamComplaint"}, "complaint"),
        ({"RecordType": "SpamComplaint", "Type": "SpamComplaint", "TypeCode": 512}, "complaint"),
        ({"Type": "AutoResponder"}, None),
        ({"RecordType": "Delivery"}, None),
    ],
)
def test_postmark_bounce_types(payload, expected):
    body = json.dumps({**POSTMARK_BOUNCE, **payload}).encode()
    found = postmark.verify_and_read(POSTMARK, basic("hook-user", "s3cret-pass-do-not-print"), body, NOW)
    assert [f.kind for f in found] == ([expected] if expected else [])


@pytest.mark.parametrize(
    ("headers", "check"),
    [
        ({}, "no HTTP Basic credentials"),
        ({"Authorization": "Bearer abc"}, "no HTTP Basic credentials"),
        (basic("hook-user", "wrong"), "credentials are wrong"),
        (basic("other", "s3cret-pass-do-not-print"), "credentials are wrong"),
    ],
)
def test_postmark_wrong_or_missing_credentials_are_refused_without_echoing_them(headers, check):
    with pytest.raises(ForgedWebhook, match=check) as refused:
        postmark.verify_and_read(POSTMARK, headers, json.dumps(POSTMARK_BOUNCE).encode(), NOW)
    assert "s3cret" not in str(refused.value)


# --- Mailgun --------------------------------------------------------------------------------

MAILGUN = mailgun.MailgunSettings(signing_key="key-mailgun-test-signing")


def mailgun_body(
    event: dict, when: datetime = STAMP, token: str | None = None, key: str = "key-mailgun-test-signing"
):
    token = token or secrets.token_hex(25)
    stamp = str(int(when.timestamp()))
    signature = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    payload = {"signature": {"timestamp": stamp, "token": token, "signature": signature}, "event-data": event}
    return json.dumps(payload).encode()


MAILGUN_FAILED = {
    "event": "failed",
    "severity": "permanent",
    "reason": "bounce",
    "recipient": "gone@example.org",
    "delivery-status": {"code": 550, "message": "5.1.1 The email account does not exist."},
    "message": {"headers": {"message-id": "20261207080400.1.ABCDEF@news.example.org"}},
}


def test_mailgun_a_signed_failure_is_read_and_its_message_id_gets_angle_brackets():
    assert mailgun.verify_and_read(MAILGUN, {}, mailgun_body(MAILGUN_FAILED), NOW) == [
        Feedback(
            "hard",
            "gone@example.org",
            None,
            "<20261207080400.1.ABCDEF@news.example.org>",
            "550 failed bounce 5.1.1 The email account does not exist.",
            "mailgun",
        )
    ]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({**MAILGUN_FAILED, "severity": "temporary"}, "soft"),
        ({"event": "complained", "recipient": "annoyed@example.org"}, "complaint"),
        ({"event": "unsubscribed", "recipient": "leaving@example.org"}, "unsubscribe"),
        ({"event": "delivered", "recipient": "fine@example.org"}, None),
    ],
)
def test_mailgun_events(event, expected):
    found = mailgun.verify_and_read(MAILGUN, {}, mailgun_body(event), NOW)
    assert [f.kind for f in found] == ([expected] if expected else [])


def test_mailgun_a_signature_by_another_key_is_refused_without_echoing_the_key():
    with pytest.raises(ForgedWebhook, match="does not match") as refused:
        mailgun.verify_and_read(MAILGUN, {}, mailgun_body(MAILGUN_FAILED, key="key-guessed"), NOW)
    assert "key-" not in str(refused.value)


def test_mailgun_an_altered_token_or_timestamp_is_refused():
    """Mailgun signs timestamp + token only (not event-data): altering either breaks it."""
    for old, new in ((b'"timestamp": "', b'"timestamp": "1'), (b'"token": "', b'"token": "f')):
        body = mailgun_body(MAILGUN_FAILED).replace(old, new, 1)
        with pytest.raises(ForgedWebhook, match="does not match"):
            mailgun.verify_and_read(MAILGUN, {}, body, NOW)


def test_mailgun_a_stale_or_future_timestamp_is_refused():
    with pytest.raises(ForgedWebhook, match="stale"):
        mailgun.verify_and_read(MAILGUN, {}, mailgun_body(MAILGUN_FAILED, NOW - timedelta(minutes=16)), NOW)
    with pytest.raises(ForgedWebhook, match="future"):
        mailgun.verify_and_read(MAILGUN, {}, mailgun_body(MAILGUN_FAILED, NOW + timedelta(minutes=16)), NOW)


def test_mailgun_a_replayed_token_is_refused():
    body = mailgun_body(MAILGUN_FAILED)
    assert len(mailgun.verify_and_read(MAILGUN, {}, body, NOW)) == 1
    with pytest.raises(ForgedWebhook, match="replayed"):
        mailgun.verify_and_read(MAILGUN, {}, body, NOW + timedelta(seconds=5))


@pytest.mark.parametrize("body", [b"{}", b'{"signature": {"timestamp": "1", "token": ""}}', b"[1]", b"\xff"])
def test_mailgun_missing_signatures_are_refused(body):
    with pytest.raises(ForgedWebhook):
        mailgun.verify_and_read(MAILGUN, {}, body, NOW)


# --- SendGrid -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sendgrid_key() -> tuple[ec.EllipticCurvePrivateKey, sendgrid.SendgridSettings]:
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, sendgrid.SendgridSettings(public_key=base64.b64encode(der).decode())


SENDGRID_EVENTS = [
    {
        "email": "gone@example.org",
        "timestamp": 1796630640,
        "smtp-id": "<digest-2026-49.sg1@news.example.org>",
        "event": "bounce",
        "type": "bounce",
        "status": "5.1.1",
        "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
        "sg_event_id": "ZGVsaXZlcmVkLTAtMjQ5",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
    },
    {
        "email": "blocked@example.org",
        "event": "bounce",
        "type": "blocked",
        "status": "5.7.1",
        "reason": "blocked",
    },
    {"email": "annoyed@example.org", "event": "spamreport"},
    {"email": "leaving@example.org", "event": "group_unsubscribe", "asm_group_id": 1},
    {"email": "gone-before@example.org", "event": "dropped", "reason": "Bounced Address"},
    {"email": "big@example.org", "event": "dropped", "reason": "Exceeded max size"},
    {"email": "fine@example.org", "event": "delivered"},
]


def sendgrid_request(key, body: bytes, when: datetime = STAMP) -> dict[str, str]:
    stamp = str(int(when.timestamp()))
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }


def test_sendgrid_a_signed_batch_is_read(sendgrid_key):
    key, settings = sendgrid_key
    body = json.dumps(SENDGRID_EVENTS).encode()
    found = sendgrid.verify_and_read(settings, sendgrid_request(key, body), body, NOW)
    assert [(f.kind, f.address) for f in found] == [
        ("hard", "gone@example.org"),
        ("soft", "blocked@example.org"),
        ("complaint", "annoyed@example.org"),
        ("unsubscribe", "leaving@example.org"),
        ("hard", "gone-before@example.org"),
    ]
    assert found[0].message_id == "<digest-2026-49.sg1@news.example.org>"
    assert (
        found[0].detail
        == "5.1.1 bounce bounce 550 5.1.1 The email account that you tried to reach does not exist."
    )
    assert {f.source for f in found} == {"sendgrid"}


def test_sendgrid_an_altered_body_is_refused(sendgrid_key):
    key, settings = sendgrid_key
    body = json.dumps(SENDGRID_EVENTS).encode()
    headers = sendgrid_request(key, body)
    with pytest.raises(ForgedWebhook, match="does not match"):
        sendgrid.verify_and_read(settings, headers, body.replace(b"gone@", b"kept@"), NOW)


def test_sendgrid_a_signature_by_another_key_is_refused(sendgrid_key):
    body = json.dumps(SENDGRID_EVENTS).encode()
    headers = sendgrid_request(ec.generate_private_key(ec.SECP256R1()), body)
    with pytest.raises(ForgedWebhook, match="does not match"):
        sendgrid.verify_and_read(sendgrid_key[1], headers, body, NOW)


def test_sendgrid_a_stale_timestamp_is_refused_even_when_signed(sendgrid_key):
    key, settings = sendgrid_key
    body = json.dumps(SENDGRID_EVENTS).encode()
    headers = sendgrid_request(key, body, NOW - timedelta(hours=1))
    with pytest.raises(ForgedWebhook, match="stale"):
        sendgrid.verify_and_read(settings, headers, body, NOW)


def test_sendgrid_a_timestamp_swapped_after_signing_is_refused(sendgrid_key):
    key, settings = sendgrid_key
    body = json.dumps(SENDGRID_EVENTS).encode()
    headers = sendgrid_request(key, body, NOW - timedelta(hours=1))
    headers["X-Twilio-Email-Event-Webhook-Timestamp"] = str(int(STAMP.timestamp()))
    with pytest.raises(ForgedWebhook, match="does not match"):
        sendgrid.verify_and_read(settings, headers, body, NOW)


@pytest.mark.parametrize(
    "missing", ["X-Twilio-Email-Event-Webhook-Signature", "X-Twilio-Email-Event-Webhook-Timestamp"]
)
def test_sendgrid_a_missing_header_is_refused(sendgrid_key, missing):
    key, settings = sendgrid_key
    body = b"[]"
    headers = {name: value for name, value in sendgrid_request(key, body).items() if name != missing}
    with pytest.raises(ForgedWebhook, match=missing):
        sendgrid.verify_and_read(settings, headers, body, NOW)


def test_sendgrid_headers_match_in_any_case(sendgrid_key):
    key, settings = sendgrid_key
    body = json.dumps(SENDGRID_EVENTS[:1]).encode()
    headers = {name.lower(): value for name, value in sendgrid_request(key, body).items()}
    assert len(sendgrid.verify_and_read(settings, headers, body, NOW)) == 1


def test_sendgrid_settings_refuse_a_key_that_is_not_p256():
    other = ec.generate_private_key(ec.SECP384R1()).public_key()
    der = other.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(ValidationError, match="P-256"):
        sendgrid.SendgridSettings(public_key=base64.b64encode(der).decode())
    with pytest.raises(ValidationError, match="base64 DER"):
        sendgrid.SendgridSettings(public_key="not a key")


# --- the registry ---------------------------------------------------------------------------


def test_every_provider_is_registered_with_its_settings_and_reader():
    assert set(ESP_READERS) == {"ses", "postmark", "mailgun", "sendgrid"}
    reader = ESP_READERS["mailgun"]
    settings = reader.settings(signing_key="key-mailgun-test-signing")
    assert len(reader.read(settings, {}, mailgun_body(MAILGUN_FAILED), NOW)) == 1
    assert "key-mailgun" not in repr(settings)  # a SecretStr
