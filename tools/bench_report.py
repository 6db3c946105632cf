"""The figures of `make bench` (build/bench/bench.json) as a plot and as the README's table.

``python -m tools.bench_report [build/bench/bench.json]`` redraws both from a saved run; tools.bench calls
`report` at the end of each run. The README's table lives between the two BEGIN/END markers below.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- bench:begin (tools/bench_report.py writes this table) -->", "<!-- bench:end -->"


def table(results: dict[str, Any]) -> str:
    """Markdown: each served figure next to the same model in process, as a ratio."""
    rows = ["| | served | in process (same run) | ratio |", "|---|---|---|---|"]
    emb = results.get("embeddings")
    if emb:
        local = emb["in_process"]
        best, batch1 = local["best"], local["batch1"]
        for route in ("direct", "gateway"):
            for point in emb[route]:
                c = point["concurrency"]
                reference, label = (batch1, "batch 1") if c == 1 else (best, f"best batch ({local['best_batch']})")
                rows.append(
                    f"| embeddings {route}, c={c} | {point['per_s']:.0f} texts/s, p50 {point['p50_ms']:.1f} ms, "
                    f"p99 {point['p99_ms']:.1f} ms | {reference:.0f} texts/s, {label} | "
                    f"{point['per_s'] / reference:.2f} |"
                )
        direct = {p["concurrency"]: p for p in emb["direct"]}
        for point in emb["gateway"]:
            c = point["concurrency"]
            rows.append(
                f"| gateway vs direct, c={c} | {point['per_s']:.0f} texts/s, p50 +"
                f"{point['p50_ms'] - direct[c]['p50_ms']:.2f} ms | {direct[c]['per_s']:.0f} texts/s direct | "
                f"{point['per_s'] / direct[c]['per_s']:.2f} |"
            )
        hop = emb.get("hop_c1")
        if hop:
            d = hop["direct_p50_ms"]
            rows.append(
                f"| gateway hop, c=1, calls interleaved ({hop['rounds']} rounds) | p50 {hop['gateway_p50_ms']:.2f} ms, "
                f"+{hop['gateway_p50_ms'] - d:.2f} ms | a plain Python relay (tools/raw_relay.py) p50 "
                f"{hop['relay_p50_ms']:.2f} ms, +{hop['relay_p50_ms'] - d:.2f} ms; direct {d:.2f} ms | "
                f"+{hop['gateway_p50_ms'] - hop['relay_p50_ms']:.2f} ms over the relay |"
            )
    gen = results.get("generation")
    if gen:
        local = gen["in_process"]
        first = {p["streams"]: p for p in gen["service"]}
        for point in gen["service"]:
            n = point["streams"]
            reference = local["batch1"] if n == 1 else local["batch8"]
            rows.append(
                f"| generation, {n} stream{'s, arrivals spread over one generation' if n > 1 else ''} | "
                f"{point['tokens_per_s']:.1f} tokens/s, "
                f"TTFT p50 {point['ttft_p50_ms']:.0f} ms | {reference:.1f} tokens/s, generate() batch "
                f"{1 if n == 1 else 8} | {point['tokens_per_s'] / reference:.2f} |"
            )
        if 1 in first and 8 in first:
            rows.append(
                f"| TTFT p50, 8 streams spread vs 1 | {first[8]['ttft_p50_ms']:.0f} ms | "
                f"{first[1]['ttft_p50_ms']:.0f} ms | "
                f"{first[8]['ttft_p50_ms'] / first[1]['ttft_p50_ms']:.2f}x |"
            )
        burst = gen.get("burst")
        if burst and 1 in first:
            rows.append(
                f"| generation, 8 streams arriving at once | {burst['tokens_per_s']:.1f} tokens/s, TTFT p50 "
                f"{burst['ttft_p50_ms']:.0f} ms | {local['batch8']:.1f} tokens/s, generate() batch 8 | "
                f"{burst['tokens_per_s'] / local['batch8']:.2f} |"
            )
            rows.append(
                f"| TTFT p50, 8 streams arriving at once vs 1 | {burst['ttft_p50_ms']:.0f} ms | "
                f"{first[1]['ttft_p50_ms']:.0f} ms | {burst['ttft_p50_ms'] / first[1]['ttft_p50_ms']:.2f}x |"
            )
    vis = results.get("vision")
    if vis:
        local = vis["in_process"]
        for point in vis["service"]:
            rows.append(
                f"| image classification, c={point['concurrency']} | {point['per_s']:.1f} images/s, "
                f"p99 {point['p99_ms']:.0f} ms | {local['best']:.1f} images/s, best batch ({local['best_batch']}) | "
                f"{point['per_s'] / local['best']:.2f} |"
            )
        faces = vis.get("faces")
        for point in faces["service"] if faces else ():
            reference = faces["in_process"]["best"]
            rows.append(
                f"| face detection, c={point['concurrency']} | {point['per_s']:.1f} images/s, "
                f"p99 {point['p99_ms']:.0f} ms | {reference:.1f} images/s, predict() on one thread | "
                f"{point['per_s'] / reference:.2f} |"
            )
    train = results.get("training")
    if train and train.get("ratio") is not None:
        rows.append(
            f"| embeddings c={train['embeddings_concurrency']} while a {train['recipe']} job trains "
            f"({train['job_wall_s']:.0f} s, {train['epochs']} epochs) | {train['embeddings_while_training_per_s']:.0f} "
            f"texts/s | {train['embeddings_alone_per_s']:.0f} texts/s, no job | {train['ratio']:.2f} |"
        )
    load = f"load average {results.get('load_average_before', 0):.1f} -> {results.get('load_average_after', 0):.1f}"
    rows.append("")
    rows.append(f"{results.get('cores')} cores, {load}, {results.get('seconds_per_point')} s per point.")
    if any(
        "before" in (results.get(part) or {}).get("in_process", {}) for part in ("embeddings", "generation", "vision")
    ):
        rows.append("Each in-process figure is the mean of a run just before and one just after the served ones.")
    return "\n".join(rows)


def plot(results: dict[str, Any], path: Path) -> None:
    """Throughput and p99 against concurrency, with the in-process figures as flat lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    emb = results.get("embeddings")
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    if emb:
        ax, ax99 = axes[0], axes[1]
        for route, style in (("direct", "o-"), ("gateway", "s--")):
            xs = [p["concurrency"] for p in emb[route]]
            ax.plot(xs, [p["per_s"] for p in emb[route]], style, label=f"service, {route}")
            ax99.plot(xs, [p["p99_ms"] for p in emb[route]], style, label=f"service, {route}")
        local = emb["in_process"]
        ax.axhline(local["best"], color="grey", linestyle=":", label=f"in process, batch {local['best_batch']}")
        ax.axhline(local["batch1"], color="black", linestyle=":", label="in process, batch 1")
        ax.set(title="Embed (1 text/call)", xlabel="concurrent callers", ylabel="texts/s", xscale="log")
        ax99.set(title="Embed p99", xlabel="concurrent callers", ylabel="ms", xscale="log")
        ax.legend(fontsize=8)
        ax99.legend(fontsize=8)
    ax = axes[2]
    gen, vis = results.get("generation"), results.get("vision")
    labels, served, local_values = [], [], []
    if gen:
        for point in gen["service"]:
            n = point["streams"]
            labels.append(f"generate\n{n} stream{'s' if n > 1 else ''}\n(tokens/s)")
            served.append(point["tokens_per_s"])
            local_values.append(gen["in_process"]["batch1" if n == 1 else "batch8"])
    if vis:
        for point in vis["service"]:
            labels.append(f"classify\nc={point['concurrency']}\n(images/s)")
            served.append(point["per_s"])
            local_values.append(vis["in_process"]["best"])
        for point in (vis.get("faces") or {}).get("service", ()):
            labels.append(f"detect faces\nc={point['concurrency']}\n(images/s)")
            served.append(point["per_s"])
            local_values.append(vis["faces"]["in_process"]["best"])
    if labels:
        xs = range(len(labels))
        ax.bar([x - 0.2 for x in xs], served, width=0.4, label="service")
        ax.bar([x + 0.2 for x in xs], local_values, width=0.4, label="in process")
        ax.set_xticks(list(xs), labels, fontsize=8)
        ax.set(title="Generation and vision")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_readme(results: dict[str, Any], readme: Path) -> bool:
    """Replace the table between the markers; False (and nothing written) where the README has none."""
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        return False
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n{table(results)}\n{END}{tail}")
    return True


def report(results: dict[str, Any], png: Path, readme: Path | None) -> None:
    print("\n" + table(results))
    plot(results, png)
    print(f"\nwrote {png}")
    if readme is not None and write_readme(results, readme):
        print(f"updated the table in {readme}")


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("build/bench/bench.json")
    root = Path(__file__).resolve().parents[1]
    report(json.loads(source.read_text()), source.with_suffix(".png"), root / "README.md")


if __name__ == "__main__":
    main()
