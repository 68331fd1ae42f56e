"""Publishing for gateway software: a durable spool (:mod:`.spool`) and the store-and-forward
:class:`~streams.publisher.producer.GatewayPublisher` (:mod:`.producer`)."""

from streams.publisher.producer import GatewayPublisher, make_producer, producer_config
from streams.publisher.spool import Spool, SpoolFullError

__all__ = ["GatewayPublisher", "Spool", "SpoolFullError", "make_producer", "producer_config"]
