import pytest

from policykit.config import ConfigError, ServiceSettings

GOOD = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/regplatform"}


def test_defaults():
    settings = ServiceSettings.from_env("drafting", GOOD)
    assert settings.grpc_port == 0 and settings.log_level == "INFO"


@pytest.mark.parametrize("env, variable", [
    ({"DATABASE_URL": GOOD["DATABASE_URL"]}, "KAFKA_BOOTSTRAP_SERVERS"),
    ({"KAFKA_BOOTSTRAP_SERVERS": "x:1"}, "DATABASE_URL"),
    ({**GOOD, "DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
    ({**GOOD, "GRPC_PORT": "http"}, "GRPC_PORT"),
    ({**GOOD, "GRPC_PORT": "70000"}, "GRPC_PORT"),
    ({**GOOD, "LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
])
def test_errors_name_the_variable(env, variable):
    with pytest.raises(ConfigError, match=variable):
        ServiceSettings.from_env("drafting", env)
