"""Check what users see in a real browser: `study ui` and `study dashboard` on a small tracked study.

Trains a tiny offline study (8x8 digits, SimpleRNN vs GRU vs LSTM of 8 units, 1 epoch, 3 trials) in
a temporary folder, writes its report (logged to the study's parent run), registers the best model
of each cell, starts `study ui` on it
and, in headless Chromium, checks that
- the runs table of the link `study ui` prints shows the study's parent run, and once expanded the
  trials with their model names (`trial-0001 GRU-8x1`);
- each trial's Dataset column names its task and digest, and its Models column its logged model;
- a trial's page shows its metrics and parameters;
- the parent run's page shows its summary metrics (best and mean score of each cell);
- the Models page lists the study's registered model (`study register`), whose page shows an
  alias `best-<cell>` per cell;
- the report logged to the parent run opens in MLflow's artifact viewer with its figures drawn
  (images decoded inside the viewer's frame, not just present in the file);
- optuna-dashboard, when installed (`pip install 'rnn-study[dashboard]'`), lists the study and
  names its metric (`study dashboard`).

Chromium is driven over its DevTools protocol on a pipe (`--remote-debugging-pipe`): no extra
Python package, and each check waits until the page shows what it looks for (up to a timeout)
instead of guessing a `--virtual-time-budget`. About 1.5-2 minutes on 2 cores, most of it training
and the report; skipped, with the reason, where Chromium is not installed (`apt-get install
chromium`). `tests/test_browser.py` runs the same checks (slow).

Run:  .venv/bin/python scripts/check_ui.py [--shots /tmp/ui-shots] [--workdir DIR]
Exit: 0 checked; 1 a check failed; 3 skipped (no Chromium).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's CPU-feature notices say nothing here
SKIPPED = 3

SWEEP = """\
name: {name}
task: {{name: digits}}
space:
  cell: {{role: scientific, choices: [SimpleRNN, GRU, LSTM]}}
  units: {{value: 8}}
  learning_rate: {{low: 1.0e-3, high: 1.0e-2, log: true}}
trials: 3
epochs: 1
batch_size: 128
sampler: random
"""


class CheckFailed(AssertionError):
    """What a user would see is not what it should be."""


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


def skip_reason() -> str | None:
    """Why the check cannot run here, or None."""
    if find_chromium() is None:
        return "Chromium is not installed (apt-get install chromium), so no browser can show the pages"
    return None


# --------------------------------------------------------------------------- the browser


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe: messages are JSON, each ended
    by a NUL byte, written to the browser's fd 3 and read from its fd 4."""

    def __init__(self, profile: Path, width: int = 1280, height: int = 900):
        commands_r, self._commands = os.pipe()
        self._replies, replies_w = os.pipe()

        def wire_pipes() -> None:  # in the child, before exec: the protocol's fixed fds 3 and 4
            # Copies above 10 first, so neither dup2 clobbers the other pipe's end.
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (commands_r, replies_w)]
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        # --no-sandbox: Chromium refuses to start its sandbox as root (CI containers).
        self.process = subprocess.Popen(
            [find_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--remote-debugging-pipe", f"--user-data-dir={profile}",
             f"--window-size={width},{height}", "about:blank"],
            # Not pass_fds=(3, 4): those must be open here already. Python's own fds close on exec;
            # the two dup2 copies (inheritable) are all Chromium gets besides stdio.
            close_fds=False, preexec_fn=wire_pipes, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        os.close(commands_r)
        os.close(replies_w)
        self._buffer, self._id, self.events = b"", 0, []
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Page.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        # Frames in other processes (a sandboxed iframe may be one) get sessions of their own.
        self.send("Target.setAutoAttach", {"autoAttach": True, "waitForDebuggerOnStart": False, "flatten": True})

    def send(self, method: str, params: dict | None = None, session: str | None = "page") -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session == "page" and hasattr(self, "session"):
            message["sessionId"] = self.session
        elif session not in (None, "page"):
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed its DevTools pipe (it crashed or was stopped)")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def open(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})

    def evaluate(self, expression: str, session: str | None = "page", context: int | None = None):
        params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        if context is not None:
            params["contextId"] = context
        result = self.send("Runtime.evaluate", params, session=session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}...: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def text(self) -> str:
        """What the page shows: its visible text, and the text of its SVG charts."""
        return self.evaluate("document.body ? document.body.innerText + '\\n' + "
                             "[...document.querySelectorAll('svg text')].map(t => t.textContent).join('\\n') : ''")

    def wait_for(self, condition, what: str, timeout: float = 60) -> object:
        """Poll `condition()` until it returns something true; fail saying `what` was not seen."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(RuntimeError):  # a page still loading has no body yet
                if value := condition():
                    return value
            if time.monotonic() > deadline:
                raise CheckFailed(f"{what}: not seen within {timeout:.0f} s; the page shows:\n"
                                  + textwrap.indent(self.text()[:1500], "    "))
            time.sleep(0.5)

    def wait_for_text(self, texts: list[str], what: str, timeout: float = 60) -> str:
        return self.wait_for(lambda: (lambda shown: shown if all(t in shown for t in texts) else "")(self.text()),
                             what, timeout)

    def frame_sessions(self) -> list[str]:
        """Sessions of the frames Chromium runs in other processes (attached automatically)."""
        self.send("Runtime.evaluate", {"expression": "0"})  # let pending events arrive
        return [event["params"]["sessionId"] for event in self.events
                if event.get("method") == "Target.attachedToTarget"
                and event["params"]["targetInfo"].get("type") == "iframe"]

    def evaluate_in_frames(self, expression: str) -> list:
        """`expression` evaluated in every child frame of the page, wherever it runs."""
        values = []
        frames = self.send("Page.getFrameTree")["frameTree"].get("childFrames", [])
        for frame in frames:
            with contextlib.suppress(RuntimeError):  # a frame in another process: asked below
                world = self.send("Page.createIsolatedWorld", {"frameId": frame["frame"]["id"]})
                values.append(self.evaluate(expression, context=world["executionContextId"]))
        for session in self.frame_sessions():
            with contextlib.suppress(RuntimeError):
                values.append(self.evaluate(expression, session=session))
        return values

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            self.send("Browser.close", session=None)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait()
        for fd in (self._commands, self._replies):
            with contextlib.suppress(OSError):
                os.close(fd)


# --------------------------------------------------------------------------- the study and servers


def make_study(folder: Path, name: str = "ui-check", say=print) -> dict[str, str]:
    """Train the tiny study in `folder` (or resume it: a finished one is kept) and log its report to
    the parent run, as `study sweep` and `study report` do; return its stores and names."""
    from study.spec.sweep_file import load_sweep
    from study.reporting.build import build_report
    from study.search.sweep import run_sweep
    from study.store.registry import register_best
    from study.store.stores import Stores

    folder.mkdir(parents=True, exist_ok=True)
    sweep_file = folder / f"{name}.yaml"
    sweep_file.write_text(SWEEP.format(name=name))
    stores = {"storage": f"sqlite:///{folder}/mlruns/optuna.db", "tracking_uri": f"sqlite:///{folder}/mlruns/mlflow.db"}
    say(f"training {name}: 3 trials of 1 epoch on 8x8 digits")
    sweep = run_sweep(load_sweep(sweep_file), **stores)
    if not (folder / "report" / "report.html").exists():
        say("writing its report (logged to the parent run)")
        build_report(name, out=folder / "report", formats="png", **stores)
        say("registering the best model of each cell (`study register`)")
        register_best(name, Stores(**stores))  # described by the verdict line the report left on the parent run
    return {**stores, "study": name, "experiment_id": sweep.experiment_id, "parent_run_id": sweep.parent_run_id}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def study_command() -> list[str]:
    script = Path(sys.executable).with_name("study")  # the console script users type
    return [str(script)] if script.exists() else [sys.executable, "-m", "study.app.cli"]


@contextlib.contextmanager
def serving(args: list[str], ready: str, log: Path, timeout: float = 240):
    """Run `study ARGS` (ui or dashboard) and yield the lines it prints once its server answers
    (the line holding `ready` and the links after it); stop it on the way out."""
    import queue
    import threading

    with open(log, "w") as errors:
        server = subprocess.Popen([*study_command(), *args], stdout=subprocess.PIPE, stderr=errors, text=True,
                                  cwd=log.parent)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in server.stdout], daemon=True).start()

    def next_line(wait: float) -> str | None:
        try:
            return lines.get(timeout=wait).rstrip("\n")
        except queue.Empty:
            return None

    try:
        deadline = time.monotonic() + timeout
        while (line := next_line(0.5)) is None or ready not in line:
            if server.poll() is not None:
                raise CheckFailed(f"`study {' '.join(args)}` exited with code {server.returncode}:\n"
                                  + textwrap.indent(log.read_text()[-2000:], "    "))
            if time.monotonic() > deadline:
                raise CheckFailed(f"`study {args[0]}` printed no link within {timeout:.0f} s")
        shown = [line]
        while (line := next_line(1.0)) is not None:  # the links follow the first line at once
            shown.append(line)
        yield shown
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# --------------------------------------------------------------------------- the checks

RUN_LINK = "[...document.querySelectorAll('a')].find(a => a.textContent.trim() === {name} && a.href.includes('/runs/'))"
# Each image of the report drawn in the artifact viewer's frame: decoded, and embedded (the frame is
# a sandboxed blob: page, where a relative image path would not load).
DRAWN_IMAGES = ("JSON.stringify({title: document.title, images: document.images.length, drawn: [...document.images]"
                ".filter(i => i.complete && i.naturalWidth > 0 && i.src.startsWith('data:image/png;base64,')).length})")


def check_mlflow_ui(browser: Browser, study: dict[str, str], folder: Path, shot, say=print) -> list[str]:
    """`study ui` on the study: its runs table (with each trial's dataset and model), a trial's page,
    the parent run's summary metrics, the registered models and the report logged to the parent run."""
    from study.store.tracking import client_for, load_runs

    trials = load_runs(study["tracking_uri"], study["study"], "trial")
    names = sorted(trials["tags.mlflow.runName"])
    cells = sorted(set(trials["params.cell"]))
    dataset = client_for(study["tracking_uri"]).get_run(trials["run_id"].iloc[0]).inputs.dataset_inputs[0].dataset
    inputs = {"name": dataset.name, "digest": dataset.digest}
    seen = []

    def saw(line: str) -> None:
        seen.append(line)
        say(f"ok: {line}")

    port = free_port()
    say("starting `study ui`")
    with serving(["ui", "--tracking-uri", study["tracking_uri"], "--port", str(port)], "MLflow UI at",
                 folder / "ui.log") as printed:
        link = next((line.split(": ", 1)[1] for line in printed if line.strip().startswith(study["study"] + ":")),
                    None)
        if link is None:
            raise CheckFailed(f"`study ui` printed no link to the runs of {study['study']}: {printed}")
        saw(f"`study ui` printed {link} once the server answered")

        # The link as printed: the sweep's parent run, its trials nested under it.
        browser.open(link)
        parent = RUN_LINK.format(name=json.dumps(study["study"]))
        browser.wait_for(lambda: browser.evaluate(f"!!{parent}"), f"the parent run {study['study']} in the runs table",
                         timeout=120)
        shot(browser, "1-runs-table")
        browser.evaluate(f"{parent}.closest('[role=gridcell]').querySelector('button').click()")  # its expander
        browser.wait_for_text(names, f"the trials {names} under the parent run once expanded")
        shot(browser, "2-runs-expanded")
        saw(f"the runs table lists the parent run; expanded, the trials {', '.join(names)}")
        # Each trial's Dataset column names its task and digest, its Models column its logged model.
        dataset = f"{inputs['name']} ({inputs['digest']})"
        browser.wait_for(lambda: browser.text().count(dataset) >= len(names)
                         and browser.text().split("\n").count("model") >= len(names),
                         f"the Dataset column ({dataset}) and Models column (model) of all {len(names)} trials")
        saw(f"the Dataset column shows {dataset} and the Models column `model` for every trial")

        best = trials.sort_values("metrics.best_val_accuracy", ascending=False).iloc[0]
        browser.open(f"{link.rsplit('/runs', 1)[0]}/runs/{best['run_id']}")
        expected = [best["tags.mlflow.runName"], "best_val_accuracy", "learning_rate", "param_count"]
        browser.wait_for_text(expected, f"the trial page of {best['tags.mlflow.runName']}")
        shot(browser, "3-trial")
        saw(f"the page of {best['tags.mlflow.runName']} shows its metrics and parameters")

        # The parent run answers: its page lists the best and mean score of each cell.
        browser.open(f"{link.rsplit('/runs', 1)[0]}/runs/{study['parent_run_id']}")
        summary = [f"{kind}_val_accuracy.{cell}" for cell in cells for kind in ("best", "mean")]
        browser.wait_for_text(["Metrics", *summary], "the parent run's summary metrics on its page")
        shot(browser, "4-parent")
        saw(f"the parent run's page shows {', '.join(summary)}")

        # The Model Registry: the study's registered model, one alias per cell.
        root = link.split("#", 1)[0]
        browser.open(f"{root}#/models")
        browser.wait_for_text(["Registered Models", study["study"], "best-"], "the registered model on the Models page")
        browser.open(f"{root}#/models/{study['study']}")
        aliases = [f"best-{cell}" for cell in cells]
        browser.wait_for_text(aliases, f"the aliases {aliases} on the registered model's page")
        shot(browser, "5-models")
        saw(f"the Models page lists {study['study']}; its page shows the aliases {', '.join(aliases)}")

        browser.open(f"{link.rsplit('/runs', 1)[0]}/runs/{study['parent_run_id']}/artifacts/report/report.html")
        drawn = browser.wait_for(
            lambda: next((json.loads(v) for v in browser.evaluate_in_frames(DRAWN_IMAGES)
                          if json.loads(v)["images"]), None),
            "the report's figures in MLflow's artifact viewer", timeout=90)
        if drawn["title"] != f"Study report: {study['study']}" or drawn["drawn"] < drawn["images"]:
            raise CheckFailed(f"the report in MLflow's artifact viewer: {drawn['drawn']} of its {drawn['images']} "
                              f"images drawn (title {drawn['title']!r})")
        shot(browser, "6-report")
        browser.evaluate_in_frames("document.images[0].scrollIntoView()")
        time.sleep(0.5)
        shot(browser, "7-report-figure")
        saw(f"the report logged to the parent run opens in the artifact viewer, {drawn['drawn']} of "
                    f"{drawn['images']} figures drawn")
    return seen


def check_dashboard(browser: Browser, study: dict[str, str], folder: Path, shot, say=print) -> list[str]:
    """`study dashboard` on the study: the studies page lists it, its page names the metric."""
    import urllib.request

    metric = "val_accuracy"  # the digits task's objective
    port = free_port()
    say("starting `study dashboard`")
    with serving(["dashboard", "--storage", study["storage"], "--port", str(port)], "optuna-dashboard at",
                 folder / "dashboard.log") as printed:
        base = printed[0].split(" at ", 1)[1].split()[0]
        browser.open(f"{base}/dashboard")
        browser.wait_for_text([study["study"]], "the study on optuna-dashboard's studies page", timeout=90)
        shot(browser, "8-dashboard-studies")
        with urllib.request.urlopen(f"{base}/api/studies", timeout=30) as response:
            study_id = next(summary["study_id"] for summary in json.load(response)["study_summaries"]
                            if summary["study_name"] == study["study"])
        browser.open(f"{base}/dashboard/studies/{study_id}")
        browser.wait_for_text([study["study"], metric], f"the metric name {metric} on the study's page", timeout=90)
        shot(browser, "9-dashboard-study")
    seen = f"`study dashboard` printed {base}; its studies page lists {study['study']}, whose page names the metric " \
           f"{metric}"
    say(f"ok: {seen}")
    return [seen]


def check(folder: Path, shots: Path | None = None, say=print) -> list[str]:
    """Every check on a study made (or found) in `folder`; return what was seen. Raises CheckFailed."""
    study = make_study(folder, say=say)
    profile = Path(tempfile.mkdtemp(prefix="chromium-", dir=folder))

    def shot(browser: Browser, name: str) -> None:
        if shots is not None:
            say(f"  screenshot {browser.screenshot(shots / f'{name}.png')}")

    browser = Browser(profile)
    try:
        seen = check_mlflow_ui(browser, study, folder, shot, say)
        try:
            import optuna_dashboard  # noqa: F401
        except ImportError:
            seen.append("optuna-dashboard is not installed: `study dashboard` not checked")
            say(seen[-1])
        else:
            seen += check_dashboard(browser, study, folder, shot, say)
    finally:
        browser.close()
        shutil.rmtree(profile, ignore_errors=True)
    return seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shots", type=Path, help="save a screenshot (1280x900) of each page checked here")
    parser.add_argument("--workdir", type=Path, help="keep the study here (reused when run again); default: a "
                                                     "temporary folder, removed")
    args = parser.parse_args()
    if reason := skip_reason():
        print(f"skipped: {reason}")
        return SKIPPED
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        folder = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="check-ui-")))
        try:
            check(folder.resolve(), args.shots,
                  say=lambda message: print(f"[{time.monotonic() - started:3.0f} s] {message}", flush=True))
        except CheckFailed as err:
            print(f"FAILED: {err}", file=sys.stderr)
            return 1
    print(f"checked in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
