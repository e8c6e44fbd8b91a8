from tests.support.moto import moto_endpoint, moto_server  # noqa: F401
