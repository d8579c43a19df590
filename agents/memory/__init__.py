"""An agent's long memory: observations, reflections, conversation summaries and facts about
others, kept in Chroma, retrieved by recency x importance x relevance (Generative Agents)."""
