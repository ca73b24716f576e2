"""The worker's internal topics, read from the built app with Faust's own names and settings."""

from __future__ import annotations

from stream.settings import Settings
from stream.worker.app import STATE_TABLE, build_app
from stream.worker.internal_topics import specs


def test_every_changelog_and_internal_topic_with_the_source_partitions() -> None:
    settings = Settings(app_id="it-app", topic_prefix="it.", partitions=6, stats_window_seconds=60)
    app = build_app(settings)
    wanted = specs(app)
    # The state table's changelog: compacted, as many partitions as the input topics
    assert wanted[f"it-app-{STATE_TABLE}-changelog"] == (6, {"cleanup.policy": "compact"})
    # Every table's changelog and every internal re-keying topic, and nothing else
    changelogs = {t.changelog_topic.get_topic_name() for t in app.tables.values()}
    internal = {
        name
        for agent in app.agents.values()
        if getattr(agent.channel, "internal", False)
        for name in agent.channel.topics
    }
    assert set(wanted) == changelogs | internal
    assert all(partitions == 6 for partitions, _ in wanted.values())
    # A windowed table's changelog is also deleted once its windows expire
    for table in app.tables.values():
        if table.window is not None:
            _, config = wanted[table.changelog_topic.get_topic_name()]
            assert config["cleanup.policy"] == "compact,delete" and int(config["retention.ms"]) > 0
