"""The page's controls reach a watched script (issue 18 item 6): a new learning rate, pause and
resume, stop; under DDP (2 processes, gloo) rank 0 hears them and every rank applies them at the
same step."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from backprop_lens.torch import watch  # noqa: E402
from tests.support import LiveServer, free_port  # noqa: E402

MAX_STEPS = 3000  # the loop's bound: the stop control ends it long before
NEW_LR = 0.05


def control(live: LiveServer, sid: str, **body: Any) -> None:
    answer = httpx.post(live.url + f"/api/sessions/{sid}/control", json=body, timeout=30)
    assert answer.status_code == 200, answer.text


def events(live: LiveServer, sid: str) -> list[dict[str, Any]]:
    got = httpx.get(live.url + f"/api/sessions/{sid}/metrics", timeout=30).json()
    return [e for e in got["events"] if e["type"] == "control"]


def wait_for(check: Any, what: str) -> Any:
    for _ in range(3000):
        value = check()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def drive(live: LiveServer, failures: list[BaseException]) -> None:
    """What a person does on the page: a new rate, pause, resume, stop, each once the script
    reported the previous one applied."""
    try:
        sessions = wait_for(
            lambda: [
                s
                for s in httpx.get(live.url + "/api/sessions").json()["sessions"]
                if s["status"] == "live" and s["step"] >= 3
            ],
            "a live session at step 3",
        )
        sid = sessions[0]["id"]
        for body, action in (
            ({"action": "learning_rate", "learning_rate": NEW_LR}, "learning_rate"),
            ({"action": "pause"}, "pause"),
            ({"action": "resume"}, "resume"),
            ({"action": "stop"}, "stop"),
        ):
            control(live, sid, **body)
            wait_for(lambda a=action: any(e["action"] == a for e in events(live, sid)), action)
    except BaseException as exc:  # handed to the test thread
        failures.append(exc)


def train(model: nn.Module, url: str, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with watch(model, optimizer, url=url, name="controlled", every=1) as watcher:
        for _ in range(MAX_STEPS):
            optimizer.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()
            watcher.log(loss=0.0)
            if watcher.should_stop:
                break
            time.sleep(0.002)  # a step of a real model takes longer than this one
    return {
        "step": watcher.step,
        "lr": optimizer.param_groups[0]["lr"],
        "stop": watcher.should_stop,
    }


def check_session(live: LiveServer) -> dict[str, dict[str, Any]]:
    (session,) = httpx.get(live.url + "/api/sessions").json()["sessions"]
    sid = session["id"]
    reported = events(live, sid)
    assert [e["action"] for e in reported] == ["learning_rate", "pause", "resume", "stop"]
    applied = {e["action"]: e for e in reported}
    assert applied["pause"]["step"] == applied["resume"]["step"]  # no step while paused
    got = httpx.get(live.url + f"/api/sessions/{sid}/metrics").json()
    changed = applied["learning_rate"]["step"]
    rates = dict(zip(got["step"], got["learning_rate"], strict=True))
    assert rates[changed + 1] == NEW_LR and rates[changed] == 0.1
    assert session["step"] == applied["stop"]["step"] < MAX_STEPS
    return applied


def test_controls_reach_a_single_process_script(server: LiveServer) -> None:
    failures: list[BaseException] = []
    driver = threading.Thread(target=drive, args=(server, failures))
    driver.start()
    torch.manual_seed(0)
    result = train(nn.Linear(4, 2), server.url, torch.randn(8, 4), torch.randn(8, 2))
    driver.join(60)
    assert not failures, failures
    applied = check_session(server)
    assert result == {"step": applied["stop"]["step"], "lr": NEW_LR, "stop": True}


def _ddp_worker(rank: int, port: int, url: str, out: str) -> None:
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    try:
        torch.set_num_threads(1)
        torch.manual_seed(0)
        model = nn.parallel.DistributedDataParallel(nn.Linear(4, 2))
        generator = torch.Generator().manual_seed(rank)
        x, y = torch.randn(8, 4, generator=generator), torch.randn(8, 2, generator=generator)
        result = train(model, url, x, y)
        Path(out, f"rank{rank}.json").write_text(json.dumps(result))
        torch.distributed.barrier()  # every rank done before the group goes (see test_watch)
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_controls_reach_both_ddp_ranks_at_the_same_step(server: LiveServer, tmp_path: Path) -> None:
    failures: list[BaseException] = []
    driver = threading.Thread(target=drive, args=(server, failures))
    driver.start()
    torch.multiprocessing.spawn(
        _ddp_worker, args=(free_port(), server.url, str(tmp_path)), nprocs=2, join=True
    )
    driver.join(60)
    assert not failures, failures
    applied = check_session(server)
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert results == [{"step": applied["stop"]["step"], "lr": NEW_LR, "stop": True}] * 2


@pytest.mark.timeout(60)  # without the resume it would wait for ever
def test_a_paused_script_resumes_on_its_own_when_the_server_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Paused from the page, then the server dies: nobody can resume the run from a page, so
    after ORPHANED_PAUSE without a connection the script resumes and says why."""
    import backprop_lens.torch as watch_module

    monkeypatch.setattr(watch_module, "ORPHANED_PAUSE", 0.5)
    live = LiveServer(tmp_path / "data").start()
    paused = threading.Event()

    def pause_then_kill() -> None:
        sessions = wait_for(
            lambda: httpx.get(live.url + "/api/sessions").json()["sessions"], "a session"
        )
        sid = sessions[0]["id"]
        control(live, sid, action="pause")
        wait_for(lambda: any(e["action"] == "pause" for e in events(live, sid)), "the pause")
        paused.set()
        live.stop()

    killer = threading.Thread(target=pause_then_kill)
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(8, 4), torch.randn(8, 2)
    try:
        with watch(model, optimizer, url=live.url, every=1) as watcher:
            killer.start()
            steps = 0
            while not paused.is_set() or steps < 50:  # the loop ends only if it runs again
                optimizer.zero_grad()
                nn.functional.mse_loss(model(x), y).backward()
                optimizer.step()
                watcher.log(loss=0.0)
                steps += 1
                time.sleep(0.002)
    finally:
        killer.join(60)
        live.stop()
    assert paused.is_set() and not watcher.should_stop
    assert watcher.step == steps
    warned = [r.getMessage() for r in caplog.records if "resuming" in r.getMessage()]
    assert len(warned) == 1 and "the server was unreachable for 0.5 s" in warned[0], warned


@pytest.mark.parametrize(
    ("make", "carries_on"),
    [
        # chainable: each step's rate is computed from the group's current one
        (lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.5), True),
        # closed form: each step's rate is computed afresh from the scheduler's base
        (lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda epoch: 0.5**epoch), False),
    ],
    ids=["StepLR", "LambdaLR"],
)
def test_a_rate_from_the_page_next_to_an_lr_scheduler(
    server: LiveServer, make: Any, carries_on: bool
) -> None:
    """What the README says of a rate set from the page when the script has a scheduler: the
    group's current rate is set, a chainable scheduler carries on from it, a closed-form one
    replaces it at its next step."""
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = make(optimizer)
    x, y = torch.randn(8, 4), torch.randn(8, 2)
    rates: list[float] = []  # the rate each step trained with
    changed_at: int | None = None
    with watch(model, optimizer, url=server.url, every=1) as watcher:
        while changed_at is None or watcher.step < changed_at + 4:
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.zero_grad()
            nn.functional.mse_loss(model(x), y).backward()
            optimizer.step()  # the page's rate is applied here, in the step post-hook
            scheduler.step()
            watcher.log(loss=0.0)
            if watcher.step == 3:
                sid = wait_for(lambda: watcher.session_id, "the session")
                control(server, sid, action="learning_rate", learning_rate=NEW_LR)
            if changed_at is None and watcher.step > 3:
                applied = [e for e in events(server, sid) if e["action"] == "learning_rate"]
                changed_at = applied[0]["step"] if applied else None
            assert watcher.step < 3000, "the page's rate never arrived"
            time.sleep(0.002)
    for step in range(1, changed_at + 1):  # step s trained with rates[s - 1]
        assert rates[step - 1] == pytest.approx(0.1 * 0.5 ** (step - 1))
    after = [rates[step - 1] for step in range(changed_at + 1, changed_at + 5)]
    if carries_on:  # halved from the page's rate at each scheduler step
        assert after == pytest.approx([NEW_LR * 0.5 ** (k + 1) for k in range(4)])
    else:  # the base's schedule, as if the page had said nothing
        assert after == pytest.approx([0.1 * 0.5 ** (changed_at + k) for k in range(4)])
