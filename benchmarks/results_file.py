"""What every benchmark script shares: the machine line and its section of benchmarks/RESULTS.md."""

from __future__ import annotations

import datetime
import os
import platform
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine() -> str:
    """Date, cores, CPU, memory and the versions that decide speed: the line each result carries."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    versions = []
    for package in ("tensorflow-cpu", "tensorflow", "keras", "optuna", "mlflow", "numpy"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{datetime.date.today()}, {len(os.sched_getaffinity(0))} cores ({cpu}), {memory:.0f} GiB RAM, "
            f"Python {platform.python_version()}, {', '.join(versions)}")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: how busy the machine was while a benchmark ran."""
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def write_section(name: str, title: str, body: str) -> Path:
    """Replace this benchmark's section of benchmarks/RESULTS.md (or append it)."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n## {title}\n\n{body.strip()}\n{end}"
    if start in text and end in text:
        text = text[:text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(text)
    return RESULTS
