"""The service-side SDK: what a serving process needs to work with driftline over Kafka.

- :class:`ModelSubscriber`: the newest verified version of a model, hot-swapped in memory;
- :class:`PredictionLogger`: log predictions and labels without blocking the request path;
- :class:`AlertSubscriber`: driftline's alerts, to iterate over or call back on;
- :class:`ModelRegistry`: every version of every model; publish, list, roll back.
"""

from driftline.sdk.alerts import AlertSubscriber
from driftline.sdk.logger import PredictionLogger
from driftline.sdk.registry import ModelRegistry, history_topic
from driftline.sdk.subscriber import ModelNotReady, ModelSubscriber

__all__ = [
    "AlertSubscriber",
    "ModelNotReady",
    "ModelRegistry",
    "ModelSubscriber",
    "PredictionLogger",
    "history_topic",
]
