# The S3 fixtures (moto in server mode, the fault proxy) for the engine's tests.
from tests.s3 import fault_proxy, moto_endpoint, s3  # noqa: F401
