"""Information diffusion: the party-invitation experiment of Generative Agents, on Townsquare.

    .venv/bin/python bench/diffusion.py [--sim-speed 96] [--days 2] [--society city] [-- more bench/society.py options]

One agent of the 25-agent society is told a new fact as its own plan ("I am throwing a party
..."), written into its memory; the whole stack runs (bench/society.py: server, worker, rq
worker, model server, Chroma, all real, on loopback) for `--days` simulated days at
`--sim-speed`; after each simulated day every agent's memory is asked (a memory search with the
fact's words, not a search of the chat) whether it holds the fact. Generative Agents reached
52% of agents informed after 2 game days (their agents had a 2-hour game loop per step; ours
talk in real time, so the simulated day is compressed by the speed: a faster clock leaves fewer
conversations per simulated day).

The last line printed is bench/society.py's JSON object, whose "diffusion" entry holds the
checkpoints: {at_s, sim_days, informed, fraction_of_others, who}.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import society  # noqa: E402

FACT = "I am throwing a party at the harbour cafe on Saturday evening and everyone is invited"
KEYWORDS = "party,harbour"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--society", default="city")
    p.add_argument("--sim-speed", type=float, default=96.0, help="simulated seconds per real second (96: a day in 15 minutes)")
    p.add_argument("--days", type=float, default=2.0)
    p.add_argument("--fact", default=FACT)
    p.add_argument("--keywords", default=KEYWORDS)
    args, rest = p.parse_known_args(argv)
    day = 86400.0 / args.sim_speed
    checkpoints = [round(day * (i + 1), 1) for i in range(int(args.days))]
    duration = day * args.days
    return society.run(["--society", args.society, "--duration", str(duration), "--sim-speed", str(args.sim_speed),
                        "--tell", args.fact, "--tell-keywords", args.keywords,
                        "--checkpoints", ",".join(str(c) for c in checkpoints), *rest])


if __name__ == "__main__":
    sys.exit(main())
