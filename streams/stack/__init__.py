"""The local stack of real services: Kafka (KRaft), Apicurio Registry and ClickHouse."""

from streams.stack.process import StackError
from streams.stack.stack import Stack

__all__ = ["Stack", "StackError"]
