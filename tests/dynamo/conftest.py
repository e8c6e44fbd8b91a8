from tests.support.moto import dynamo_backend, moto_endpoint, moto_server  # noqa: F401
