"""Analytics of a society over a time window: the scorecard, its time series and the exports.

A society is a guild; a window is a range of snowflake ids (`window.py`), so a run (issue 16)
maps to (guild, window). The messages of the window are read once, in id order, in batches
from a server-side cursor inside one read-only snapshot (`source.py`), and fed to small
consumers with one job each:

    activity.py      messages per minute, reply depth, reciprocity
    textstats.py     exact and near-duplicates, repeated 5-grams, lines in another's voice
    diffusion.py     how a planted fact (keywords) spreads: mentions and speakers over time
    mood.py          sentiment over time and per member
    topics.py        topics from sentence embeddings (sampled), their labels and trends
    anomalies.py     agents looping, silent, hostile or spamming: alerts
    breakthroughs.py ideas first said by one agent and taken up across communities

and, from other tables, `gate.py` (the quality gate's rejections from `llm_calls`) and
`social.py` (communities, stability, influence and brokers from the graph snapshots).
`scorecard.py` runs them all; `export.py` writes the tables (Parquet, CSV) and the graph
(GEXF, GraphML); `report.py` renders the HTML report.
"""
