"""relayaudit's MMD test against the reference implementation, `model-equality-testing` 0.0.2 (Gao et al. 2025).

    python bench/mmd_reference.py [--reference-permutations 500] [--cache-dir .bench-cache] [--skip-scale]

Run from the repository root in relayaudit's venv. A benchmark, not a test: CI never runs it. It prints three
tables:

1. Agreement. The same simulated data go to both implementations: 25 prompts x 10 completions per side
   (`PersonaEngine`, 50-token answers at T = 1), character level, one fixed padding length L for all
   scenarios (the longest completion). Scenarios: the null (atlas vs atlas with other seeds), atlas vs
   atlas-mini, atlas vs atlas at quantize 0.5 and 1.0, atlas vs cirrus. For each: the statistic from
   both (they must agree to 1e-9), our p-value with `permute="pooled"` (the reference's permutation
   scheme) beside the reference's, whether they agree within Monte Carlo error, and our default
   `permute="within"` p-value for comparison.
2. Speed. Wall time of one full test (statistic + permutations) on the null scenario's 250 vs 250 data:
   ours with 1,000 permutations, the reference with fewer (it recomputes every kernel per permutation)
   and that time scaled to 1,000 permutations; the reference process's peak memory.
3. Scale. Our test on two 10,000-observation runs (100 prompts x 100 completions per side), 1,000
   permutations, character level: wall time and the process's peak resident memory.

The reference needs torch, so it runs in its own virtual environment, in a subprocess, on the same data
handed over as a JSON file in a temporary directory. That environment is made once and reused, at
<cache-dir>/met-venv (git-ignored), with

    python -m venv <cache-dir>/met-venv
    <cache-dir>/met-venv/bin/python -m pip install torch==2.13.0 numpy matplotlib tqdm model-equality-testing==0.0.2

(torch==2.13.0 resolves to the CPU wheel this machine keeps locally). The package imports `transformers`
at import time for its tokenizer helpers, which this comparison does not use, so a stub module stands in
for it. Nothing but local files is used; pip's install is the only network access.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from relayaudit.sim.engine import PersonaEngine
from relayaudit.sim.personas import PERSONAS
from relayaudit.stats.mmd import mmd_test, normalise_whitespace
from relayaudit.stats.result import StatResult
from relayaudit.types import ChatRequest, Message

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ("torch==2.13.0", "numpy", "matplotlib", "tqdm", "model-equality-testing==0.0.2")
TOPICS = (
    "the history of bridges",
    "how tides work",
    "learning a second language",
    "the economics of coffee",
    "why the sky is blue",
    "caring for house plants",
    "the rules of chess",
    "volcanoes",
    "saving for retirement",
    "the life of honey bees",
    "writing clean code",
    "the first moon landing",
    "baking bread at home",
    "how vaccines are tested",
    "urban cycling",
    "the water cycle",
    "jazz improvisation",
    "desert ecosystems",
    "public libraries",
    "the printing press",
    "sleep and memory",
    "electric cars",
    "ancient Rome",
    "composting",
    "mountain weather",
)
BASELINE_SEEDS = 0
RELAY_SEEDS = 1_000_000
STATISTIC_TOLERANCE = 1e-9

Sample = list[tuple[int, str]]

# Runs inside the reference's venv: argv[1] is the job (JSON), argv[2] where to write the results (JSON).
REFERENCE_RUNNER = textwrap.dedent(
    """
    import json, os, resource, sys, time, types

    os.environ["TQDM_DISABLE"] = "1"
    stub = types.ModuleType("transformers")  # imported by the package, unused for Hamming MMD
    stub.AutoTokenizer = None
    sys.modules["transformers"] = stub

    import numpy as np
    import torch
    from model_equality_testing.algorithm import run_two_sample_test
    from model_equality_testing.distribution import CompletionSample
    from model_equality_testing.utils import pad_to_length, tokenize_unicode

    with open(sys.argv[1]) as f:
        job = json.load(f)
    L, B = job["length"], job["permutations"]

    def sample(side):
        completions = pad_to_length(tokenize_unicode([t[:L] for t in side["texts"]]), L=L)
        return CompletionSample(prompts=np.array(side["prompts"], dtype=np.int64), completions=completions,
                                m=job["prompts"])

    results = {"torch": torch.__version__}
    for name, data in job["scenarios"].items():
        a, b = sample(data["baseline"]), sample(data["relay"])
        start = time.perf_counter()
        _, statistic_only = run_two_sample_test(a, b, pvalue_type="dummy", stat_type="mmd_hamming")
        statistic_seconds = time.perf_counter() - start
        torch.manual_seed(job["seed"])
        start = time.perf_counter()
        pvalue, statistic = run_two_sample_test(a, b, pvalue_type="permutation_pvalue", stat_type="mmd_hamming", b=B)
        results[name] = {"statistic": float(statistic), "pvalue": float(pvalue), "statistic_seconds": statistic_seconds,
                         "seconds": time.perf_counter() - start,
                         "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    with open(sys.argv[2], "w") as f:
        json.dump(results, f)
    """
)


@dataclass(frozen=True)
class Scenario:
    name: str
    persona: str
    quantize: float


SCENARIOS = (
    Scenario("null: atlas, other seeds", "atlas", 0.0),
    Scenario("atlas-mini", "atlas-mini", 0.0),
    Scenario("atlas quantize 0.5", "atlas", 0.5),
    Scenario("atlas quantize 1.0", "atlas", 1.0),
    Scenario("cirrus", "cirrus", 0.0),
)


def prompts(count: int) -> list[str]:
    return [f"Write a few sentences about {TOPICS[i % len(TOPICS)]} (question {i + 1})." for i in range(count)]


def generate(persona: str, quantize: float, prompt_texts: list[str], samples: int, seeds: int) -> Sample:
    """`samples` completions per prompt: 50-token free-text answers at T = 1, seeds `seeds`, `seeds` + 1, ..."""
    engine = PersonaEngine(PERSONAS[persona], quantize=quantize)
    out: Sample = []
    for p, text in enumerate(prompt_texts):
        request = ChatRequest(messages=(Message("user", text),), temperature=1.0, max_tokens=50)
        out.extend((p, engine.generate(request, seeds + p * samples + j).text) for j in range(samples))
    return out


def reference_python(cache_dir: Path, console: Console) -> Path:
    """The reference venv's interpreter, creating the venv first if it is missing or incomplete."""
    venv = cache_dir / "met-venv"
    python = venv / "bin" / "python"
    marker = venv / "relayaudit-bench-requirements.txt"
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    console.print(f"Creating the reference venv at {venv} (about a minute) ...")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS], check=True)
    marker.write_text(wanted)
    return python


def run_reference(
    python: Path, scenarios: dict[str, tuple[Sample, Sample]], n_prompts: int, length: int, permutations: int, seed: int
) -> dict[str, Any]:
    """The reference's statistic, p-value and timings per scenario, computed in its own venv."""

    def side(sample: Sample) -> dict[str, list[Any]]:
        # Our test normalises whitespace before encoding; the reference gets the normalised text.
        return {"prompts": [p for p, _ in sample], "texts": [normalise_whitespace(t)[:length] for _, t in sample]}

    job = {
        "length": length,
        "permutations": permutations,
        "prompts": n_prompts,
        "seed": seed,
        "scenarios": {name: {"baseline": side(a), "relay": side(b)} for name, (a, b) in scenarios.items()},
    }
    with tempfile.TemporaryDirectory(prefix="mmd-reference-") as tmp:
        runner, job_file, out_file = Path(tmp, "runner.py"), Path(tmp, "job.json"), Path(tmp, "results.json")
        runner.write_text(REFERENCE_RUNNER)
        job_file.write_text(json.dumps(job))
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["TQDM_DISABLE"] = "1"
        subprocess.run([str(python), str(runner), str(job_file), str(out_file)], check=True, env=env, cwd=tmp)
        results: dict[str, Any] = json.loads(out_file.read_text())
    return results


def timed_mmd(baseline: Sample, relay: Sample, **options: Any) -> tuple[StatResult, float]:
    """Our test and its wall time."""
    start = time.perf_counter()
    result = mmd_test(baseline, relay, **options)
    return result, time.perf_counter() - start


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=25, help="prompts in the agreement data (default 25)")
    parser.add_argument("--samples", type=int, default=10, help="completions per prompt and side (default 10)")
    parser.add_argument("--permutations", type=int, default=1000, help="our permutations (default 1000)")
    parser.add_argument("--reference-permutations", type=int, default=500, help="reference permutations (500)")
    parser.add_argument("--length", type=int, default=None, help="padding length L (default: longest completion)")
    parser.add_argument("--scale-prompts", type=int, default=100, help="prompts in the scale run (default 100)")
    parser.add_argument("--scale-samples", type=int, default=100, help="per prompt and side in it (default 100)")
    parser.add_argument("--skip-scale", action="store_true", help="skip the 10,000-observation run")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".bench-cache", help="where the reference venv lives")
    parser.add_argument("--seed", type=int, default=0, help="permutation seed (numpy for ours, torch for reference)")
    args = parser.parse_args()
    console = Console(width=max(Console().width, 150))  # the tables are wide; wrap rather than truncate numbers
    python = reference_python(args.cache_dir, console)

    texts = prompts(args.prompts)
    baseline = generate("atlas", 0.0, texts, args.samples, BASELINE_SEEDS)
    scenarios = {
        s.name: (baseline, generate(s.persona, s.quantize, texts, args.samples, RELAY_SEEDS)) for s in SCENARIOS
    }
    length = args.length or max(len(normalise_whitespace(t)) for a, b in scenarios.values() for _, t in (*a, *b))
    B, B_ref = args.permutations, args.reference_permutations
    console.print(f"Running the reference ({B_ref} permutations, {len(scenarios)} scenarios) ...")
    reference = run_reference(python, scenarios, args.prompts, length, B_ref, args.seed)

    n = args.prompts * args.samples
    agreement = Table(
        title=f"Agreement: baseline atlas vs relay, {args.prompts} prompts x {args.samples} per side ({n} vs {n}), "
        f"characters, L = {length}; ours B = {B}, reference B = {B_ref} (torch {reference['torch']})",
        caption="SE(Δp) = sqrt(p(1 - p)(1/B + 1/B_ref)), p the mean of the two pooled p-values. Ours counts "
        "(1 + #{T_b >= T}) / (1 + B), the reference #{T_b >= T} / B.",
    )
    for column in (
        "scenario",
        "T ours",
        "T reference",
        "|ΔT|",
        "p ours within",
        "p ours pooled",
        "p reference",
        "|Δp| pooled vs ref",
        "SE(Δp)",
        "|Δp| ≤ 3 SE + 1/B_ref",
    ):
        agreement.add_column(column)
    for name, (a, b) in scenarios.items():
        within = mmd_test(a, b, length=length, permutations=B, rng=np.random.default_rng(args.seed))
        pooled = mmd_test(a, b, length=length, permutations=B, permute="pooled", rng=np.random.default_rng(args.seed))
        ref = reference[name]
        if within.statistic is None or within.pvalue is None or pooled.pvalue is None:
            raise SystemExit(f"{name}: too little data ({within.reason})")
        delta_t = abs(within.statistic - ref["statistic"])
        p_mid = (pooled.pvalue + ref["pvalue"]) / 2
        se = math.sqrt(p_mid * (1 - p_mid) * (1 / B + 1 / B_ref))
        delta_p = abs(pooled.pvalue - ref["pvalue"])
        agreement.add_row(
            name,
            f"{within.statistic:.6f}",
            f"{ref['statistic']:.6f}",
            f"{delta_t:.1e}" + ("" if delta_t <= STATISTIC_TOLERANCE else " MISMATCH"),
            f"{within.pvalue:.3f}",
            f"{pooled.pvalue:.3f}",
            f"{ref['pvalue']:.3f}",
            f"{delta_p:.3f}",
            f"{se:.3f}",
            "yes" if delta_p <= 3 * se + 1 / B_ref else "NO",
        )
    console.print(agreement)

    null_name = SCENARIOS[0].name
    a, b = scenarios[null_name]
    runs: dict[str, list[float]] = {"within": [], "pooled": []}
    for _ in range(3):
        for permute in ("within", "pooled"):
            runs[permute].append(timed_mmd(a, b, length=length, permutations=B, permute=permute)[1])
    ref = reference[null_name]
    ref_scaled = ref["statistic_seconds"] + (ref["seconds"] - ref["statistic_seconds"]) * B / B_ref
    speed = Table(title=f"Speed: one full test, {null_name}, {n} vs {n}, L = {length} (ours: median of 3)")
    for column in ("implementation", "permutations", "wall s", "reference / ours at equal B", "peak RSS MiB"):
        speed.add_column(column)
    for permute in ("within", "pooled"):
        ours = statistics.median(runs[permute])
        speed.add_row(f"ours, permute={permute}", str(B), f"{ours:.3f}", f"{ref_scaled / ours:.0f}x", "")
    speed.add_row("reference, statistic only", "0", f"{ref['statistic_seconds']:.3f}", "", "")
    speed.add_row("reference, measured", str(B_ref), f"{ref['seconds']:.1f}", "", f"{ref['peak_rss_mib']:.0f}")
    speed.add_row(f"reference, scaled to B = {B}", str(B), f"{ref_scaled:.1f}", "", "")
    console.print(speed)

    if args.skip_scale:
        return
    texts = prompts(args.scale_prompts)
    console.print(f"Generating {args.scale_prompts} x {args.scale_samples} per side for the scale run ...")
    big_a = generate("atlas", 0.0, texts, args.scale_samples, BASELINE_SEEDS)
    big_b = generate("atlas", 0.0, texts, args.scale_samples, RELAY_SEEDS)
    scale = Table(
        title=f"Scale: ours, {args.scale_prompts} prompts x {args.scale_samples} per side "
        f"({len(big_a)} vs {len(big_b)}), characters, B = {B}, null data"
    )
    for column in ("permute", "L", "wall s", "p-value", "peak RSS MiB before", "peak RSS MiB after"):
        scale.add_column(column)
    for permute in ("within", "pooled"):
        before = peak_rss_mib()
        result, seconds = timed_mmd(big_a, big_b, permutations=B, permute=permute)
        scale.add_row(
            permute,
            str(result.detail["length"]),
            f"{seconds:.2f}",
            f"{result.pvalue:.3f}",
            f"{before:.0f}",
            f"{peak_rss_mib():.0f}",
        )
    console.print(scale)


if __name__ == "__main__":
    main()
