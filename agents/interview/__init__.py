"""Interviews: an administrator (or a scenario) asks an agent a question out of band and gets
its answer from its memory, persona, relationships and mood, as Generative Agents' authors
interviewed theirs. Whether the agent knows is decided in code from the retrieval scores
(evidence.py); the model only phrases the answer, through the turn's quality gate (answer.py).
An interview reads the agent's state and changes nothing: the caller decides whether the
exchange is remembered.
"""

from .answer import TASK, Answer, Interviewee, answer
from .evidence import Evidence, Recalled, gather

__all__ = ["TASK", "Answer", "Evidence", "Interviewee", "Recalled", "answer", "gather"]
