"""Which models an agent's thought goes to, in order: the routing file (YAML).

```yaml
backends:
  local:   {kind: ollama, host: "http://127.0.0.1:11434", model: "smollm2:135m", timeout_seconds: 600}
  big:     {kind: ollama, host: "http://gpu-box:11434", model: "llama3.1:8b"}
  vllm:    {kind: openai, host: "http://10.0.0.5:8000/v1", model: "qwen2.5-7b", api_key_env: VLLM_KEY}
routes:
  default: [local]            # every agent, every task, unless a more specific route says otherwise
  tasks:   {revive: [big, local]}
  agents:  {Ana: [big, local]} # by agent name; an agent's route wins over a task's
breaker: {failure_threshold: 3, recovery_seconds: 30}
```

Without a routing file there is one backend, `local`: the Ollama API at `OLLAMA_HOST`, or the
bundled model that `townsquare model serve` / `up` serves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

BUNDLED_MODEL = "smollm2:135m"


class BackendSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["ollama", "openai"] = "ollama"
    host: str
    model: str = BUNDLED_MODEL
    # a slow local model is waited for, not timed out (its work would be thrown away): the
    # scheduler keeps the queue short instead (worker/runtime/pacing.py)
    timeout_seconds: Annotated[float, Field(gt=0, le=1800)] = 600.0
    api_key_env: str | None = None  # openai kind: the environment variable holding the key


class BreakerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    failure_threshold: Annotated[int, Field(ge=1, le=100)] = 3
    recovery_seconds: Annotated[float, Field(gt=0, le=3600)] = 30.0


class Routes(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default: Annotated[list[str], Field(min_length=1)]
    tasks: dict[str, list[str]] = {}
    agents: dict[str, list[str]] = {}


class Routing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    backends: Annotated[dict[str, BackendSpec], Field(min_length=1)]
    routes: Routes
    breaker: BreakerSpec = BreakerSpec()

    @model_validator(mode="after")
    def _known_backends(self) -> Routing:
        chains = [self.routes.default, *self.routes.tasks.values(), *self.routes.agents.values()]
        unknown = {name for chain in chains for name in chain} - set(self.backends)
        if unknown:
            raise ValueError(f"routes name unknown backends: {sorted(unknown)}")
        return self

    def chain(self, *, agent: str | None = None, task: str | None = None) -> list[str]:
        """The ordered backends for this agent and task (agent route > task route > default)."""
        if agent is not None and agent in self.routes.agents:
            return self.routes.agents[agent]
        if task is not None and task in self.routes.tasks:
            return self.routes.tasks[task]
        return self.routes.default


def default_routing(ollama_host: str) -> Routing:
    return Routing(backends={"local": BackendSpec(host=ollama_host)}, routes=Routes(default=["local"]))


def load_routing(path: Path | None, ollama_host: str) -> Routing:
    if path is None:
        return default_routing(ollama_host)
    return Routing.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
