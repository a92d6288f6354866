"""Progress output: plain periodic lines when the output is not a terminal, tqdm on a terminal."""

import io
from pathlib import Path

from segdil.config import dump_config, load_config
from segdil.train.logger import PlainProgress, RunLogger, parse_progress, progress_line

ROOT = Path(__file__).resolve().parent.parent


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_non_tty_400_step_training_log_is_a_few_kb(tmp_path):
    """Drive the logger as ``train()`` does for 400 steps (0.5 s each): header, steps, two validations."""
    cfg = load_config(ROOT / "configs" / "hdc_synth.yaml", ["train.max_steps=400"])
    stream, clock = io.StringIO(), FakeClock()
    logger = RunLogger(tmp_path, enabled=True, total_steps=400, stream=stream)
    logger.bar.clock = clock
    logger.echo(f"work dir: {tmp_path}\n" + dump_config(cfg))
    metrics = {"mIoU": 0.5, "small_object_iou": 0.25, "iIoU": 0.125}
    for step in range(1, 401):
        clock.now += 0.5
        logger.step(step, loss=1.0 / step, lr=1e-3, img_per_s=16.0, every=cfg.train.log_every)
        if step % 200 == 0:
            logger.validation(step, metrics, ["background", "a"])
    logger.close()
    log = stream.getvalue()
    assert "\r" not in log
    assert len(log.encode()) < 20_000, f"{len(log.encode())} bytes"
    steps = [int(p["step"]) for p in map(parse_progress, log.splitlines()) if p is not None]
    # the first step, every tenth, and every 30 s (60 steps) in between
    assert steps == [1, 40, 80, 120, 160, 200, 240, 280, 320, 360, 400], steps
    assert "step 200: mIoU 0.5000, small_object_iou 0.2500, iIoU 0.1250" in log and "step 400: mIoU" in log
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 400 // 10 + 1 + 2  # unchanged: every 10th step, step 1, validations


def test_plain_progress_adds_a_line_every_30_s_between_tenths():
    stream, clock = io.StringIO(), FakeClock()
    bar = PlainProgress(1000, stream, every_s=30.0, clock=clock)
    for step in range(1, 101):  # 10 s per step: 1000 s for the first tenth
        clock.now += 10.0
        bar.n = step
        bar.set_postfix(loss=0.5, lr=1e-3, img_s=4.0)
        bar.refresh()
    steps = [int(parse_progress(line)["step"]) for line in stream.getvalue().splitlines()]
    assert steps[0] == 1 and steps[-1] == 100
    assert all(b - a == 3 for a, b in zip(steps, steps[1:])), steps  # every 3 steps = 30 s
    last = parse_progress(stream.getvalue().splitlines()[-1])
    assert last["elapsed_s"] == 1000 and last["eta_s"] == 9000  # 10 s per step, 900 steps left


def test_a_resumed_run_counts_its_budget_from_the_seconds_already_trained():
    stream, clock = io.StringIO(), FakeClock()
    bar = PlainProgress(10**9, stream, clock=clock, budget_s=90.0)
    clock.now = 5.0  # 5 s into this process, 65 s of training in all
    bar.n = 400
    bar.set_postfix(loss=0.5, lr=1e-3, img_s=4.0, train_s=65.0)
    bar.refresh()
    line = stream.getvalue().splitlines()[-1]
    assert "(72%)" in line and parse_progress(line)["eta_s"] == 25


def test_progress_line_round_trips_and_rejects_other_lines():
    line = progress_line(40, 400, 0.51234, 3e-3, 12.34, 31.2)
    assert line == "step 40/400 (10%) loss 0.5123 lr 3.00e-03 img/s 12.3 elapsed 31s eta 281s"
    assert parse_progress(line) == {"step": 40, "total": 400, "loss": 0.5123, "lr": 0.003, "img_per_s": 12.3, "elapsed_s": 31, "eta_s": 281}
    assert parse_progress("step 200: mIoU 0.5") is None and parse_progress("train:  10%|█") is None


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_the_tqdm_bar(tmp_path):
    stream = Tty()
    logger = RunLogger(tmp_path, enabled=True, total_steps=50, stream=stream)
    for step in range(1, 51):
        logger.step(step, loss=0.5, lr=1e-3, img_per_s=4.0, every=10)
    logger.close()
    assert not isinstance(logger.bar, PlainProgress)
    assert "\r" in stream.getvalue() and "50/50" in stream.getvalue()
    assert not any(parse_progress(line) for line in stream.getvalue().replace("\r", "\n").splitlines())


def test_compare_progress_is_one_live_line_with_runs_model_seed_step_and_eta():
    from segdil.compare.progress import CompareProgress

    stream, clock = Tty(), FakeClock()
    progress = CompareProgress([("hdc", 0), ("fcn", 0), ("hdc", 1), ("fcn", 1)], echo=lambda line: stream.write(line + "\n"), live=True, stream=stream, clock=clock)
    progress.start("hdc", 0, Path("log"))
    assert progress.line() == "runs 0/4 done · hdc seed 0 · starting · ETA …"
    clock.now = 10.0
    progress.update(parse_progress(progress_line(50, 100, 0.5, 1e-3, 8.0, 10.0)))
    # this run: 10 s left; the three others: as long as this run's projected 20 s each
    assert progress.line() == "runs 0/4 done · hdc seed 0 · step 50/100 · 8.0 img/s · ETA 70 s"
    clock.now = 20.0
    progress.finish("hdc", 0)
    progress.start("fcn", 0, Path("log"))
    clock.now = 25.0
    progress.update(None)  # no progress line in the log yet: the mean finished run (20 s) minus 5 s, then hdc 20 s and fcn 20 s
    assert progress.line() == "runs 1/4 done · fcn seed 0 · starting · ETA 55 s"
    clock.now = 30.0
    progress.finish("fcn", 0)
    assert progress.line() == "runs 2/4 done · ETA 30 s"  # hdc 20 s, fcn 10 s
    progress.close()
    text = stream.getvalue()
    assert "\n" not in text and text.count("\r") >= 4, "one redrawn line, no line per run"
    frames = [f.strip() for f in text.split("\r") if f.strip()]
    assert all(a != b for a, b in zip(frames, frames[1:])), "an unchanged line is not redrawn"


def test_compare_progress_off_a_terminal_prints_plain_lines():
    from segdil.compare.progress import CompareProgress

    lines, clock = [], FakeClock()
    progress = CompareProgress([("hdc", 0), ("fcn", 0)], echo=lines.append, live=False, clock=clock)
    progress.start("hdc", 0, None)
    progress.finish("hdc", 0, reused=True, message="reused runs/hdc/seed0")
    progress.start("fcn", 0, Path("runs/fcn/seed0.log"))
    for second in range(1, 121):  # two minutes of updates, twice a second: a line every 30 s
        clock.now = float(second)
        progress.update(parse_progress(progress_line(second, 240, 0.5, 1e-3, 8.0, float(second))))
    progress.finish("fcn", 0, message="mIoU 0.500")
    assert lines[0] == "[1/2] hdc seed 0: reused runs/hdc/seed0"
    assert lines[1] == "[2/2] fcn seed 0: training (progress in runs/fcn/seed0.log)"
    assert lines[2:6] == [f"runs 1/2 done · fcn seed 0 · step {s}/240 · 8.0 img/s · ETA {eta}" for s, eta in ((30, "4 min"), (60, "3 min"), (90, "2 min"), (120, "2 min"))]
    assert lines[6:] == ["[2/2] fcn seed 0: mIoU 0.500"]


def test_log_follower_reads_the_newest_complete_progress_line(tmp_path):
    from segdil.compare.progress import LogFollower

    log = tmp_path / "seed0.log"
    follower = LogFollower(log)
    assert follower.poll() is None  # no file yet
    log.write_text("work dir: x\n" + progress_line(1, 10, 0.5, 1e-3, 2.0, 1.0) + "\nstep 2/1")
    assert follower.poll()["step"] == 1  # the unfinished line is not read yet
    with open(log, "a") as f:
        f.write("0 (20%) loss 0.5000 lr 1.00e-03 img/s 2.0 elapsed 2s eta 8s\nstep 10: mIoU 0.5\n")
    assert follower.poll() == {"step": 2, "total": 10, "loss": 0.5, "lr": 0.001, "img_per_s": 2.0, "elapsed_s": 2, "eta_s": 8}


def test_a_time_budget_sets_the_share_done_and_the_eta_of_a_run_and_of_a_comparison():
    from segdil.compare.progress import CompareProgress

    line = progress_line(40, 10**9, 0.5, 1e-3, 8.0, 30.0, budget=(30.0, 90.0))
    parsed = parse_progress(line)
    assert "(33%)" in line and parsed["eta_s"] == 60.0
    assert parse_progress(progress_line(40, 50, 0.5, 1e-3, 8.0, 30.0, budget=(30.0, 90.0)))["eta_s"] == 8.0, "the step limit comes first"
    clock = FakeClock()
    progress = CompareProgress([("hdc", 0), ("fcn", 0)], echo=lambda text: None, clock=clock, budget_s=90.0)
    progress.start("hdc", 0, None)
    clock.now = 30.0
    progress.update(parsed)
    assert progress.line() == "runs 0/2 done · hdc seed 0 · step 40 · 30/90 s · 8.0 img/s · ETA 2 min"  # 60 s, then 90 s
