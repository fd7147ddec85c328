"""The 3-D Secure server that acquirers without their own challenge flow rely on."""

from kassa.connectors.threeds.client import RESULT_PARAM, Authentication, ThreeDSClient

__all__ = ["RESULT_PARAM", "Authentication", "ThreeDSClient"]
