"""Keeping the two topics of an input partition together in event time while catching up.

A join partition reads partition *p* of the predictions topic and of the labels topic. Live,
both carry events of about the same event time. Catching up on a backlog, Kafka hands them over
at different paces (a label record is a fraction of a prediction's size), and the topic that
runs ahead would push the join's watermark past the other's events, which would then arrive
"late": out of order, and past the label join's time-to-live. So while one topic has records
waiting, the other may run ahead of it by at most half the lateness: its later events are held
in the :class:`~driftline.streams.tasks.JoinTask` (the :meth:`Alignment.frontier`) and its
partition is paused (:meth:`Alignment.apply`) until the slower one catches up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from confluent_kafka import Consumer, TopicPartition

from driftline.streams.tasks import JoinTask

__all__ = ["NOTHING", "Alignment"]

#: A frontier that holds back every event.
NOTHING = -(1 << 62)


class Alignment:
    """Frontiers and pauses for the join partitions of one consumer."""

    def __init__(self, consumer: Consumer, predictions: str, labels: str, lateness_ms: int):
        self.consumer = consumer
        self.topics = {"predictions": predictions, "labels": labels}
        self.slack = lateness_ms // 2
        self.paused: set[tuple[str, int]] = set()

    def frontier(
        self, task: JoinTask, positions: Mapping[tuple[str, int], int]
    ) -> tuple[int, str] | None:
        """How far in event time the join may go while one of its topics catches up, and the
        topic that runs ahead; None when neither needs holding back."""
        newest, p = task.read_newest, task.partition
        for lead, lag in (("labels", "predictions"), ("predictions", "labels")):
            ahead, behind = newest.get(lead), newest.get(lag)
            if ahead is None or not self.unread(self.topics[lag], p, positions):
                continue
            if behind is None:  # nothing of the other topic read yet: wait for it
                return NOTHING, self.topics[lead]
            if ahead - behind > self.slack:
                return behind + self.slack, self.topics[lead]
        return None

    def apply(
        self, tasks: Iterable[JoinTask], positions: Mapping[tuple[str, int], int]
    ) -> list[JoinTask]:
        """Pause the topic that runs ahead, resume the others; the tasks whose held events may
        all go in now."""
        caught_up: list[JoinTask] = []
        for task in tasks:
            frontier = self.frontier(task, positions)
            ahead = None if frontier is None else frontier[1]
            for topic in self.topics.values():
                key = (topic, task.partition)
                if (topic == ahead) != (key in self.paused):
                    partition = [TopicPartition(topic, task.partition)]
                    if topic == ahead:
                        self.consumer.pause(partition)
                        self.paused.add(key)
                    else:
                        self.consumer.resume(partition)
                        self.paused.discard(key)
            if frontier is None and task.held:
                caught_up.append(task)
        return caught_up

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions are revoked: resume them (librdkafka keeps a pause across assignments)."""
        paused = [tp for tp in partitions if (tp.topic, tp.partition) in self.paused]
        if paused:
            self.consumer.resume(paused)
        self.paused -= {(tp.topic, tp.partition) for tp in paused}

    def unread(self, topic: str, partition: int, positions: Mapping[tuple[str, int], int]) -> bool:
        """Whether records of ``topic[partition]`` wait to be read (or may: no fetch answered)."""
        low, high = self.consumer.get_watermark_offsets(
            TopicPartition(topic, partition), cached=True
        )
        if high < 0:
            return True
        position = positions.get((topic, partition))
        return (position if position is not None else max(low, 0)) < high
