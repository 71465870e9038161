"""Benchmark: what an NVIDIA GPU changes for a sweep: cuDNN cells, XLA, and workers sharing one GPU.

Two parts, each through the project's own code, on offline tasks (no download):

- **cells**: one trial per cell variant (`study.train.fit.train_and_evaluate`, same seed and arrays),
  with `jit_compile` false and true: seconds per epoch (median of the epochs after the first), the
  first epoch (tracing, compiling, cuDNN set-up), the whole trial, and what actually ran: the
  `cudnn_eligible` tag a sweep writes, whether the traced training step holds a `CudnnRNN` op (what
  Keras really chose), and XLA as Keras applied it (Keras refuses XLA for a model whose GRU/LSTM can
  use cuDNN, so "XLA asked" and "XLA ran" may differ). GRU and LSTM with tanh and no recurrent
  dropout are cuDNN-eligible; relu, recurrent dropout and SimpleRNN are not.
- **workers**: trials per hour of the real command, `study sweep FILE --jobs N` for N = 1, 2, 4
  sharing the one GPU, each on fresh stores and timed to its exit (as `benchmarks/workers.py`), with
  TensorFlow's memory growth on (`TF_FORCE_GPU_ALLOW_GROWTH=true`) so that the first worker does
  not reserve the whole GPU; nvidia-smi, when present, gives the peak GPU memory and mean use.

Without a GPU (`tf.config.list_physical_devices('GPU') == []`) it measures nothing: it says so and
records "not measured" in its section of RESULTS.md (never over measured figures). `--quick` and
`--allow-cpu` run the same code on CPU to check it; CPU figures are printed, never recorded.

    pip install -e '.[gpu]'                                  # once, on the GPU machine
    .venv/bin/python benchmarks/gpu.py                       # both parts; writes RESULTS.md
    .venv/bin/python benchmarks/gpu.py --part cells          # one part (the other's figures are kept)
    .venv/bin/python benchmarks/gpu.py --quick               # smoke run, CPU is fine: tiny sizes, prints only
    .venv/bin/python benchmarks/gpu.py --allow-cpu           # the full sizes on CPU: prints only
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import warnings
from pathlib import Path

import yaml
from results_file import RESULTS, load_average, machine, write_section
from workers import run_sweep_command

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Several processes share one GPU: without memory growth the first one reserves nearly all of its
# memory. Set before TensorFlow starts, here and (inherited) in every `study sweep --jobs` worker.
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")

SECTION = "gpu"
TITLE = "GPU: cuDNN cells, XLA, and workers sharing one GPU"
NOT_MEASURED = "not measured: no GPU on this machine (tf.config.list_physical_devices('GPU') == [])"
COMMAND = ".venv/bin/python benchmarks/gpu.py"

# (label, params): cuDNN-eligible cells first, then what takes each off the cuDNN kernel.
VARIANTS = [
    ("LSTM tanh", {"cell": "LSTM"}),
    ("LSTM relu", {"cell": "LSTM", "activation": "relu"}),
    ("LSTM tanh, recurrent dropout 0.1", {"cell": "LSTM", "recurrent_dropout": 0.1}),
    ("GRU tanh", {"cell": "GRU"}),
    ("GRU relu", {"cell": "GRU", "activation": "relu"}),
    ("SimpleRNN tanh", {"cell": "SimpleRNN"}),
]
QUICK_VARIANTS = VARIANTS[:2]  # one eligible, one not: enough to run every code path

# (label, task, units, epochs, batch size): 40 and 100 time steps; cuDNN's lead grows with length.
WORKLOADS = [
    ("mnist1d 20k, 40 steps", {"name": "mnist1d", "num_samples": 20000}, 128, 4, 128),
    ("sine 20k, 100 steps", {"name": "sine", "length": 20000, "window": 100}, 128, 4, 128),
]
QUICK_WORKLOADS = [("digits, 8 steps", {"name": "digits"}, 16, 2, 64)]

# The workers part: a small search on the cuDNN path, the common case of a GPU sweep.
WORKER_SWEEP = {
    "name": "gpu-workers",
    "description": "GRU vs LSTM on MNIST-1D, several workers on one GPU (benchmarks/gpu.py)",
    "task": {"name": "mnist1d", "num_samples": 10000},
    "space": {"cell": {"role": "scientific", "choices": ["GRU", "LSTM"]}, "units": {"choices": [64, 128]},
              "learning_rate": {"low": 1.0e-3, "high": 1.0e-2, "log": True}},
    "trials": 12, "epochs": 5, "batch_size": 128, "sampler": "random", "seed": 0,
}
QUICK_WORKER_SWEEP = {**WORKER_SWEEP, "task": {"name": "digits"}, "trials": 2, "epochs": 1, "batch_size": 64,
                      "space": {**WORKER_SWEEP["space"], "units": {"value": 16}}}
JOBS, QUICK_JOBS = (1, 2, 4), (1, 2)


def gpu_line(gpus: list) -> str:
    """The GPU, its driver and the CUDA/cuDNN TensorFlow was built with: the line GPU results carry."""
    import tensorflow as tf

    names = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus]
    build = tf.sysconfig.get_build_info()
    driver = ""
    if shutil.which("nvidia-smi"):
        done = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader", "-i", "0"],
                              capture_output=True, text=True)
        driver = f", driver {done.stdout.strip()}" if done.returncode == 0 else ""
    return (f"{len(gpus)} GPU(s): {', '.join(names)}{driver}; TensorFlow built with CUDA "
            f"{build.get('cuda_version', '?')}, cuDNN {build.get('cudnn_version', '?')}")


# --------------------------------------------------------------------------- cells


def uses_cudnn(model) -> bool:
    """Whether Keras put a fused cuDNN kernel in this model's training-mode forward pass."""
    import tensorflow as tf

    spec = tf.TensorSpec((None, *model.input_shape[1:]), model.inputs[0].dtype)
    graph = tf.function(lambda x: model(x, training=True)).get_concrete_function(spec).graph.as_graph_def()
    # The op may sit in the graph itself or in a function it calls (the library).
    ops = [node.op for node in graph.node] + [node.op for f in graph.library.function for node in f.node_def]
    return any(op.startswith("CudnnRNN") for op in ops)


def time_cell(data, params: dict, epochs: int, batch_size: int, jit: bool, objective, on_gpu: bool) -> dict:
    import tensorflow as tf

    from study.train.fit import train_and_evaluate
    from study.train.models import cudnn_eligible
    from study.train.reuse import TRACED_MODELS

    # Every row times a fresh model (first epoch = tracing and compiling), not one kept from an
    # earlier row of the same architecture, where the project keeps traced models.
    TRACED_MODELS.clear()
    if on_gpu:
        tf.config.experimental.reset_memory_stats("GPU:0")
    started = time.perf_counter()
    with warnings.catch_warnings():
        # Keras says "Model doesn't support jit_compile=True" for cuDNN models; the table shows it.
        warnings.filterwarnings("ignore", message="Model doesn't support")
        result = train_and_evaluate(data, params, epochs=epochs, batch_size=batch_size, seed=0,
                                    metric=objective.metric, direction=objective.direction, jit_compile=jit)
    seconds = time.perf_counter() - started
    peak = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20 if on_gpu else None
    return {"seconds": seconds, "first": result.epoch_seconds[0], "later": statistics.median(result.epoch_seconds[1:]),
            "xla": result.xla, "eligible": cudnn_eligible(params), "cudnn": uses_cudnn(result.model),
            "peak_mib": peak, "value": result.value}


def run_cells(workloads: list, variants: list, repeats: int, on_gpu: bool) -> tuple[list[str], list[str]]:
    """Time every (workload, variant, XLA off/on); return the Markdown table and the summary lines."""
    from study.spec.sweep_file import parse_config
    from study.train.data import load_task

    rows, lines = [], []
    for label, task, units, epochs, batch_size in workloads:
        config = parse_config({"name": "gpu-cells", "task": task, "trials": 1, "epochs": epochs,
                               "batch_size": batch_size}, "benchmarks/gpu.py")
        data = load_task(config.task)
        later: dict[tuple[str, bool], float] = {}
        for variant, params in variants:
            params = {**config.fixed_params(), "units": units, **params}
            runs: dict[bool, list[dict]] = {False: [], True: []}
            for repeat in range(repeats):
                for jit in ((False, True) if repeat % 2 == 0 else (True, False)):
                    runs[jit].append(time_cell(data, params, epochs, batch_size, jit, config.objective, on_gpu))
            for jit in (False, True):
                r = {k: statistics.median(x[k] for x in runs[jit]) if isinstance(runs[jit][0][k], float) else runs[jit][0][k]
                     for k in runs[jit][0]}
                later[(variant, jit)] = r["later"]
                peak = f"{r['peak_mib']:.0f}" if r["peak_mib"] is not None else "-"
                rows.append(f"| {label} | {variant} | {'yes' if r['eligible'] else 'no'} | {'yes' if r['cudnn'] else 'no'} "
                            f"| {'on' if jit else 'off'} | {'on' if r['xla'] else 'off'} | {r['later']:.3f} | {r['first']:.1f} "
                            f"| {r['seconds']:.1f} | {peak} | {r['value']:.4f} |")
                print(f"{label:>22} | {variant:>32} | XLA asked {'on ' if jit else 'off'} ran {'on ' if r['xla'] else 'off'} | "
                      f"eligible {'yes' if r['eligible'] else 'no '} cuDNN op {'yes' if r['cudnn'] else 'no '} | "
                      f"epoch {r['later']:.3f} s, first {r['first']:.1f} s, trial {r['seconds']:.1f} s"
                      + (f", peak {peak} MiB" if on_gpu else ""), flush=True)
                if on_gpu and r["eligible"] != r["cudnn"]:
                    lines.append(f"{label}, {variant}: the `cudnn_eligible` tag says {r['eligible']}, "
                                 f"but Keras {'did' if r['cudnn'] else 'did not'} use cuDNN")
        # Per cell: how much slower each way off the cuDNN kernel is than the eligible tanh cell.
        for cell in ("LSTM", "GRU"):
            base = later.get((f"{cell} tanh", False))
            for variant, _ in variants:
                if base and variant.startswith(cell) and variant != f"{cell} tanh":
                    best = min(later[(variant, False)], later[(variant, True)])
                    best_base = min(base, later[(f"{cell} tanh", True)])
                    lines.append(f"{label}, {cell}: '{variant}' epochs take {later[(variant, False)] / base:.2f}x "
                                 f"the tanh cell's without XLA, {best / best_base:.2f}x with each at its faster XLA setting")
    header = ["| workload | variant | cudnn_eligible tag | cuDNN op in graph | XLA asked | XLA ran | epoch s (median, 2nd on) "
              "| first epoch s | trial s | peak GPU MiB | best value |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    return header + rows, lines


# --------------------------------------------------------------------------- workers


class GpuSampler:
    """Samples nvidia-smi's used memory and utilisation of GPU 0 twice a second while a command runs."""

    def __init__(self) -> None:
        self.memory: list[float] = []
        self.use: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            done = subprocess.run(["nvidia-smi", "--query-gpu=memory.used,utilization.gpu",
                                   "--format=csv,noheader,nounits", "-i", "0"], capture_output=True, text=True)
            try:
                memory, use = (float(x) for x in done.stdout.split(","))
            except ValueError:
                continue
            self.memory.append(memory)
            self.use.append(use)

    def __enter__(self) -> "GpuSampler":
        if shutil.which("nvidia-smi"):
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def run_workers(sweep: dict, jobs_list: tuple[int, ...]) -> tuple[list[str], list[str]]:
    """`study sweep --jobs N` for each N on fresh stores; return the Markdown table and summary lines."""
    folder = Path(tempfile.mkdtemp(prefix="gpu-benchmark-"))
    sweep_path = folder / "gpu-workers.yaml"
    sweep_path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    results = {}
    for jobs in jobs_list:
        with GpuSampler() as sampler:
            result = run_sweep_command(sweep_path, jobs, folder / f"jobs-{jobs}")
        result["peak_mib"] = max(sampler.memory) if sampler.memory else None
        result["use"] = statistics.mean(sampler.use) if sampler.use else None
        results[jobs] = result
        print(f"--jobs {jobs}: {result['trials']} trials in {result['wall']:.0f} s = {result['per_hour']:.0f}/h "
              f"({result['per_hour'] / results[jobs_list[0]]['per_hour']:.2f}x --jobs {jobs_list[0]}); steady state "
              f"{result['steady_per_hour']:.0f}/h" + (f"; GPU memory peak {result['peak_mib']:.0f} MiB, mean use "
                                                      f"{result['use']:.0f}%" if result["peak_mib"] is not None else ""),
              flush=True)
    table = ["| --jobs | trials | wall s | trials/h | vs --jobs 1 | steady trials/h | vs --jobs 1 | GPU memory peak MiB "
             "| mean GPU use % |", "|---|---|---|---|---|---|---|---|---|"]
    one = results[jobs_list[0]]
    for jobs, r in results.items():
        memory = f"{r['peak_mib']:.0f}" if r["peak_mib"] is not None else "-"
        use = f"{r['use']:.0f}" if r["use"] is not None else "-"
        table.append(f"| {jobs} | {r['trials']} | {r['wall']:.0f} | {r['per_hour']:.0f} | {r['per_hour'] / one['per_hour']:.2f}x "
                     f"| {r['steady_per_hour']:.0f} | {r['steady_per_hour'] / one['steady_per_hour']:.2f}x | {memory} | {use} |")
    best = max(results, key=lambda j: results[j]["per_hour"])
    lines = [f"most trials per hour with --jobs {best}: {results[best]['per_hour'] / one['per_hour']:.2f}x --jobs 1 "
             f"(whole command, {sweep['trials']} trials x {sweep['epochs']} epoch(s))"]
    return table, lines


# --------------------------------------------------------------------------- RESULTS.md


def previous_part(part: str) -> str | None:
    """A part's text from the GPU section already in RESULTS.md, kept when only the other part runs."""
    text = RESULTS.read_text() if RESULTS.exists() else ""
    start, end = f"<!-- {SECTION}:{part}:start -->", f"<!-- {SECTION}:{part}:end -->"
    if start in text and end in text:
        return text[text.index(start):text.index(end) + len(end)]
    return None


def has_measurements() -> bool:
    return previous_part("cells") is not None or previous_part("workers") is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("all", "cells", "workers"), default="all", help="what to measure")
    parser.add_argument("--repeats", type=int, default=1, help="off/on pairs per cell variant (order swapped each time)")
    parser.add_argument("--trials", type=int, help="trials of the workers part's sweep (default 12)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run on CPU or GPU: one tiny workload, 2 variants, --jobs 1 and 2 on 2 trials; prints only")
    parser.add_argument("--allow-cpu", action="store_true", help="run the full sizes without a GPU; prints only")
    parser.add_argument("--no-record", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()

    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)  # the env variable says so too; this process may be imported
    if not gpus and not (args.quick or args.allow_cpu):
        print(f"{NOT_MEASURED}.\nNothing was timed. On a machine with an NVIDIA GPU: pip install -e '.[gpu]', then {COMMAND}\n"
              f"(`{COMMAND} --quick` runs the same code on CPU, as a check).")
        if args.no_record:
            return
        if has_measurements():
            print(f"kept the GPU figures already in {RESULTS}")
            return
        body = f"""
**{NOT_MEASURED}.**

Checked on: {machine()}. Nothing is guessed from CPU figures. To measure, on a machine with an NVIDIA GPU:

    pip install -e '.[gpu]'
    {COMMAND}
"""
        print(f"wrote {write_section(SECTION, TITLE, body)}")
        return

    device = gpu_line(gpus) if gpus else "no GPU: CPU figures, a check of the code only"
    print(f"device: {device}\nmemory growth: TF_FORCE_GPU_ALLOW_GROWTH={os.environ['TF_FORCE_GPU_ALLOW_GROWTH']}", flush=True)
    parts = {}
    if args.part in ("all", "workers"):
        # Workers first: this process has not started the GPU yet, so it holds none of its memory.
        sweep = dict(QUICK_WORKER_SWEEP if args.quick else WORKER_SWEEP)
        sweep["trials"] = args.trials or sweep["trials"]
        parts["workers"] = run_workers(sweep, QUICK_JOBS if args.quick else JOBS)
    if args.part in ("all", "cells"):
        parts["cells"] = run_cells(QUICK_WORKLOADS if args.quick else WORKLOADS, QUICK_VARIANTS if args.quick else VARIANTS,
                                   1 if args.quick else args.repeats, on_gpu=bool(gpus))
    for table, lines in parts.values():
        print("\n".join(lines))
    if args.no_record or args.quick or not gpus:
        return

    texts = {}
    for part, title in (("cells", "cuDNN-eligible vs other cells, XLA off vs on (one process)"),
                        ("workers", "workers sharing one GPU: `study sweep --jobs N`")):
        if part in parts:
            table, lines = parts[part]
            texts[part] = (f"<!-- {SECTION}:{part}:start -->\n### {title}\n\n{chr(10).join('- ' + x for x in lines)}\n\n"
                           f"{chr(10).join(table)}\n<!-- {SECTION}:{part}:end -->")
        else:
            texts[part] = previous_part(part) or f"### {title}\n\nnot run yet: `{COMMAND} --part {part}`"
    body = f"""
Machine: {machine()}; {device}. Memory growth on (`TF_FORCE_GPU_ALLOW_GROWTH=true`).
Load average at the end: {load_average()}. Rerun: `{COMMAND}` (or `--part cells`, `--part workers`).

"XLA asked" is the trial's `jit_compile`; "XLA ran" is what Keras applied (it keeps XLA off for a
model whose GRU/LSTM layers can use cuDNN). "cuDNN op in graph": a `CudnnRNN` op in the traced
training-mode forward pass. Workers: the sweep in `benchmarks/gpu.py` (`WORKER_SWEEP`), each run
the whole command on fresh stores.

{texts['cells']}

{texts['workers']}
"""
    print(f"wrote {write_section(SECTION, TITLE, body)}")


if __name__ == "__main__":
    main()
