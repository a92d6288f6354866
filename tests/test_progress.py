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
