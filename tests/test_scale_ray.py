"""A real Ray cluster on this machine: a head and a second node joined over loopback (one CPU and a
small object store each), started and stopped here by process id. A corpus of 30 images and 4
short videos, with one worker process killed mid-run, gives the serial run's rows; a rerun skips
what is finished and redoes what changed."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from mien.cli import main

if os.environ.get("CI"):
    import ray  # noqa: F401  (CI installs the test extra, which has ray: the cluster test must run there)
else:
    pytest.importorskip("ray", reason='needs the ray extra: pip install "mien[ray]"')

SRC = Path(__file__).resolve().parents[1] / "src"
RAY = Path(sys.executable).with_name("ray")
NODE = ["--num-cpus=1", "--object-store-memory=100000000", "--node-ip-address=127.0.0.1", "--disable-usage-stats", "--block"]
TITLE = b"ray::run_task"  # a Ray worker's process title while it runs a mien task


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(roots: list[int]) -> list[int]:
    """The processes started, directly or not, by ``roots`` (Ray's workers have process groups of their own)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    found, frontier = [], list(roots)
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def stop(nodes: list[subprocess.Popen]) -> None:
    """SIGTERM, then SIGKILL after 15 s, to the nodes' processes and everything they started."""
    for sig, grace in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 10.0)):
        for pid in descendants([n.pid for n in nodes]) + [n.pid for n in nodes]:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        end = time.monotonic() + grace
        while time.monotonic() < end and (any(n.poll() is None for n in nodes) or descendants([n.pid for n in nodes])):
            time.sleep(0.2)
    for n in nodes:
        n.wait(timeout=5)


def wait_for_nodes(address: str, count: int, env: dict, timeout: float = 120.0) -> None:
    probe = f"import ray; ray.init(address='{address}', logging_level='ERROR'); " \
            f"import sys; sys.exit(0 if sum(n['Alive'] for n in ray.nodes()) >= {count} else 1)"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, timeout=60).returncode == 0:
            return
        time.sleep(1.0)
    raise AssertionError(f"the cluster did not reach {count} nodes in {timeout:.0f} s")


@pytest.fixture(scope="module")
def cluster():
    temp = Path(f"/tmp/mien-ray-{os.getpid()}")  # short: Ray's socket paths must fit in 107 characters
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
           "RAY_USAGE_STATS_ENABLED": "0"}
    port = free_port()
    address = f"127.0.0.1:{port}"
    logs = open(temp.with_suffix(".log"), "wb")
    nodes = [subprocess.Popen([str(RAY), "start", "--head", f"--port={port}", f"--temp-dir={temp}",
                               "--include-dashboard=false", *NODE], env=env, stdout=logs, stderr=logs, start_new_session=True)]
    try:
        wait_for_nodes(address, 1, env)
        nodes.append(subprocess.Popen([str(RAY), "start", f"--address={address}", *NODE], env=env, stdout=logs,
                                      stderr=logs, start_new_session=True))
        wait_for_nodes(address, 2, env)
        yield address, env, nodes
    finally:
        stop(nodes)
        logs.close()
        shutil.rmtree(temp, ignore_errors=True)
        temp.with_suffix(".log").unlink(missing_ok=True)
    assert not descendants([n.pid for n in nodes]), "processes of the test cluster are still running"


@pytest.fixture(scope="module")
def corpus(shared_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    for f in sorted((shared_data / "ferplus/data/FER2013Test").glob("*.png"))[:26]:
        shutil.copy(f, folder / f.name)
    for f in ["pillow/hopper.jpg", "pillow/hopper.png", "skimage/astronaut.png", "openmpf/person_cropped_2.png"]:
        shutil.copy(shared_data / "demo" / f, folder / f"demo_{Path(f).name}")
    for name in ("clip_a", "clip_b"):
        shutil.copy(shared_data / "demo/openmpf/video_01.mp4", folder / f"{name}.mp4")
    shutil.copy(shared_data / "demo/openmpf/new_face_video-90.mp4", folder / "clip_c.mp4")
    shutil.copy(Path(__file__).parent / "fixtures/vfr.mp4", folder / "clip_d.mp4")
    return folder


def serial_tables(corpus: Path, out: Path) -> dict[str, pd.DataFrame]:
    assert main(["analyze", str(corpus), "-o", str(out), "--workers", "1", "--end", "3"]) == 0
    faces = pd.concat([pd.read_parquet(p) for p in sorted(out.glob("*.parquet")) if p.name.count(".") == 1])
    tables = {"faces": faces}
    for kind in ("tracks", "episodes"):
        parts = []
        for p in sorted(out.glob(f"*.{kind}.parquet")):
            part = pd.read_parquet(p)
            if len(part):
                parts.append(part)
        tables[kind] = pd.concat(parts)
    return tables


def sort(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return table.sort_values(keys, kind="stable").reset_index(drop=True)


def kill_one_worker_mid_run(nodes, parts: Path, killed: list, done: threading.Event) -> None:
    """SIGKILL one Ray worker that is running a mien task, once some parts are written."""
    while not done.is_set():
        if len(list(parts.glob("*.parquet"))) >= 3:
            busy = [pid for pid in descendants([n.pid for n in nodes]) if command_line(pid).startswith(TITLE)]
            if busy:
                os.kill(busy[0], signal.SIGKILL)
                killed.append(busy[0])
                return
        time.sleep(0.02)


def test_cluster_run_with_a_killed_worker_equals_the_serial_run(cluster, corpus, tmp_path):
    address, env, nodes = cluster
    out = tmp_path / "dataset"
    killed: list[int] = []
    done = threading.Event()
    killer = threading.Thread(target=kill_one_worker_mid_run, args=(nodes, out / "faces", killed, done))
    killer.start()
    try:
        run = subprocess.run([sys.executable, "-m", "mien", "analyze", str(corpus), "-o", str(out), "--ray", address,
                              "--end", "3"], env=env, capture_output=True, text=True, timeout=600)
    finally:
        done.set()
        killer.join()
    assert run.returncode == 0, run.stderr
    assert killed, "the run ended before a worker could be killed"
    assert "34 input(s), 34 to analyse" in run.stderr

    serial = serial_tables(corpus, tmp_path / "serial")
    faces = pd.read_parquet(out / "faces")  # the folder, read whole as one dataset
    assert faces["source"].nunique() == 34 and len(list((out / "faces").iterdir())) == 34
    pd.testing.assert_frame_equal(sort(faces, ["source", "frame", "face"]), sort(serial["faces"], ["source", "frame", "face"]))
    for kind, keys in (("tracks", ["source", "track"]), ("episodes", ["source", "track", "onset_s", "unit"])):
        pd.testing.assert_frame_equal(sort(pd.read_parquet(out / kind), keys), sort(serial[kind], keys))

    # a rerun skips what is finished and redoes an input whose content changed
    shutil.copy(corpus / "demo_hopper.png", corpus / "demo_astronaut.png")
    again = subprocess.run([sys.executable, "-m", "mien", "analyze", str(corpus), "-o", str(out), "--ray", address,
                            "--end", "3"], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "34 input(s), 1 to analyse (33 finished before)" in again.stderr
    redone = pd.read_parquet(out / "faces")
    assert len(redone) == len(faces)
    changed = redone["source"].str.endswith("demo_astronaut.png")
    assert redone.loc[changed, "image_width"].item() == 128  # hopper's size now


def test_a_long_video_is_analysed_in_pieces_on_the_cluster(cluster, shared_data, tmp_path):
    address, env, _ = cluster
    video = tmp_path / "long.mp4"
    shutil.copy(shared_data / "demo/openmpf/new_face_video-90.mp4", video)
    out = tmp_path / "dataset"
    run = subprocess.run([sys.executable, "-m", "mien", "analyze", str(video), "-o", str(out), "--ray", address,
                          "--chunk", "6"], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert main(["analyze", str(video), "-o", str(tmp_path / "whole.parquet"), "--workers", "1"]) == 0
    whole, pieces = pd.read_parquet(tmp_path / "whole.parquet"), pd.read_parquet(out / "faces")
    pd.testing.assert_series_equal(whole["frame"], pieces["frame"])
    assert whole["track"].nunique() == pieces["track"].nunique()
    assert len(pd.read_parquet(out / "tracks")) == whole["track"].nunique()
    assert not (out / ".work").exists()
