"""Security settings without a broker: what librdkafka refuses, the authentication error's
message, and the credentials the faust runtime gets (``test_sasl_kafka`` uses a real broker)."""

from __future__ import annotations

import re
import ssl
from typing import Any

import faust
import pytest
from confluent_kafka import KafkaError
from faust.types.auth import AuthProtocol, SASLMechanism

from driftline.errors import ConfigError
from driftline.settings import Settings
from driftline.streams import clients
from driftline.streams.faust_app import broker_credentials

SCRAM = {
    "bootstrap": "b:9094",
    "security_protocol": "SASL_PLAINTEXT",
    "sasl_mechanism": "SCRAM-SHA-512",
    "sasl_username": "svc",
    "sasl_password": "hunter2-secret",
}


def kafka(**changes: Any) -> Any:
    return Settings.load(kafka={**SCRAM, **changes}).kafka


def test_sasl_without_a_user_is_a_config_error_not_a_traceback() -> None:
    incomplete = kafka(sasl_username=None, sasl_password=None)
    says = re.escape("sasl.username and sasl.password must be set")
    for make in (
        lambda: clients.producer(incomplete),
        lambda: clients.consumer(incomplete, "g"),
        lambda: clients.admin_client(incomplete),
    ):
        with pytest.raises(ConfigError, match=says):
            make()


def test_the_authentication_error_names_user_and_mechanism_and_hides_the_password() -> None:
    reported = KafkaError(
        KafkaError._AUTHENTICATION,
        "sasl_plaintext://b:9094/bootstrap: SASL authentication error: bad credentials "
        "(the client sent hunter2-secret) (after 344ms in state AUTH_REQ)",
    )
    message = str(clients.authentication_error(kafka(), reported))
    assert message == (
        "authentication failed for user svc (SASL SCRAM-SHA-512) at b:9094: SASL "
        "authentication error: bad credentials (the client sent ***); check "
        "DRIFTLINE_KAFKA_SASL_USERNAME, DRIFTLINE_KAFKA_SASL_PASSWORD and "
        "DRIFTLINE_KAFKA_SASL_MECHANISM (or [kafka] in the config file)"
    )
    # credentials given as librdkafka properties are the ones named
    given = kafka(sasl_username=None, sasl_password=None, sasl_mechanism=None)
    given = given.model_copy(update={"client": {"sasl.username": "raw", "sasl.mechanism": "PLAIN"}})
    assert "for user raw (SASL PLAIN)" in str(clients.authentication_error(given, reported))


def test_faust_gets_sasl_credentials_from_the_settings() -> None:
    assert broker_credentials(Settings.load().kafka) is None
    credentials = broker_credentials(kafka())
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol is AuthProtocol.SASL_PLAINTEXT
    assert credentials.mechanism is SASLMechanism.SCRAM_SHA_512
    assert (credentials.username, credentials.password) == ("svc", "hunter2-secret")
    assert "hunter2" not in repr(credentials)
    over_tls = broker_credentials(kafka(security_protocol="SASL_SSL", sasl_mechanism="PLAIN"))
    assert over_tls is not None and over_tls.protocol is AuthProtocol.SASL_SSL
    assert isinstance(over_tls.ssl_context, ssl.SSLContext)


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"security_protocol": "SSL"}, "use `driftline run` for SSL without SASL"),
        ({"sasl_mechanism": "GSSAPI"}, "not GSSAPI (kafka.sasl_mechanism)"),
        ({"sasl_password": None}, "set DRIFTLINE_KAFKA_SASL_USERNAME and"),
        ({"ssl_certificate_location": "c.pem"}, "use `driftline run` for mutual TLS"),
    ],
)
def test_what_faust_cannot_do_is_a_config_error(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(says)):
        broker_credentials(kafka(**changes))


def test_the_tls_error_names_the_broker_the_reason_and_the_ca_setting() -> None:
    reported = KafkaError(
        KafkaError._SSL,
        "sasl_ssl://b:9095/bootstrap: SSL handshake failed: error:0A000086:SSL routines::"
        "certificate verify failed: broker certificate could not be verified "
        "(after 23ms in state SSL_HANDSHAKE)",
    )
    tls = kafka(security_protocol="SASL_SSL", ssl_ca_location="/etc/ca.pem")
    message = str(clients.tls_error(tls, reported))
    assert message == (
        "TLS handshake with b:9095 failed: certificate verify failed: broker certificate could "
        "not be verified; check DRIFTLINE_KAFKA_SSL_CA_LOCATION (or [kafka] ssl_ca_location in "
        "the config file): it must be the CA that signed the broker's certificate, and the "
        "client now trusts /etc/ca.pem"
    )
    assert "hunter2-secret" not in message
    # no CA set: the system's are trusted
    system = str(clients.tls_error(kafka(security_protocol="SASL_SSL"), reported))
    assert system.endswith("the client now trusts the system's CA certificates")
