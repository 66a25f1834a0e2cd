"""Readiness probe for kafka-local: one produce + consume round trip.

usage: python probe.py BOOTSTRAP TOPIC   (exit 0 when the record came back)
The consumer has a group.id, so the broker also creates __consumer_offsets
here rather than in the first test that uses a group.
"""
import sys

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, topic = sys.argv[1], sys.argv[2]
admin = AdminClient({"bootstrap.servers": bootstrap})
admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=10)

producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.timeout.ms": 10000})
producer.produce(topic, b"ping")
if producer.flush(10):
    sys.exit("produce timed out")

consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": topic, "enable.auto.commit": False})
consumer.assign([TopicPartition(topic, 0, 0)])
for _ in range(40):
    msg = consumer.poll(0.25)
    if msg is not None and msg.error() is None and msg.value() == b"ping":
        break
else:
    sys.exit("consume timed out")
consumer.close()
admin.delete_topics([topic])[topic].result(timeout=10)
