"""lv.train as a notebook uses it: data files with label columns, progress, Ctrl-C, the
flow-matching couplings and reflow, and nothing left behind by a refused start."""
import json
import os
import signal
import threading

import numpy as np
import pytest

import langevin as lv


def blobs(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    k = n * 3 // 4
    x = np.concatenate([rng.normal(-2, 0.3, size=(k, 2)), rng.normal(2, 0.3, size=(n - k, 2))])
    return x, np.array([0] * k + [1] * (n - k))


def test_a_csv_file_with_a_label_column_trains_a_conditional_model(tmp_path):
    x, lab = blobs()
    csv = tmp_path / "table.csv"
    with open(csv, "w") as f:
        f.write("a,b,class\n")
        for r, c in zip(x, lab):
            f.write(f"{r[0]:.6f},{r[1]:.6f},{c}\n")
    run = lv.train(str(csv), tmp_path / "r", label="class", steps=2000, seed=1, cond_drop=0.3, progress=False)
    one, _ = lv.generate(run, n=2000, cls=1, seed=3)
    zero, _ = lv.generate(run, n=2000, cls=0, seed=3)
    # each class lands on its own blob (the label column is taken out of the data: 2-D samples)
    assert one.shape == (2000, 2)
    assert np.mean(one[:, 0] > 0) > 0.95 and np.mean(zero[:, 0] > 0) < 0.05
    # the same labels from a file beside an .npy of the data, as pathlib paths
    npy, labf = tmp_path / "x.npy", tmp_path / "y.npy"
    np.save(npy, x.astype(np.float32))
    np.save(labf, lab.reshape(-1, 1).astype(np.float32))
    run2 = lv.train(npy, tmp_path / "r2", labels=labf, steps=50, seed=1, progress=False)
    assert run2["steps"] == 50
    with pytest.raises(ValueError, match="give the labels once"):
        lv.train(str(csv), tmp_path / "r3", label="class", labels=labf, steps=10, progress=False)
    with pytest.raises(ValueError, match="conditional=True uses a built-in"):
        lv.train(npy, tmp_path / "r4", conditional=True, steps=10, progress=False)
    with pytest.raises(ValueError, match="class"):
        lv.train(str(csv), tmp_path / "r5", label="klass", steps=10, progress=False)
    txt = tmp_path / "data.txt"
    txt.write_text("1 2\n3 4\n")
    with pytest.raises(ValueError, match="only .csv and .npy"):
        lv.train(str(txt), tmp_path / "r6", steps=10, progress=False)
    with pytest.raises(ValueError, match="unknown|data set"):
        lv.train("mooons", tmp_path / "r7", steps=10, progress=False)
    for d in ("r3", "r4", "r5", "r6", "r7"):
        assert not (tmp_path / d).exists(), d


def test_progress_is_reported_in_order_up_to_the_last_step(tmp_path):
    x, _ = blobs()
    seen = []
    s = lv.train(x, tmp_path / "p", steps=600, seed=1, progress=lambda step, total, loss: seen.append((step, total, loss)))
    steps = [v[0] for v in seen]
    assert s["steps"] == 600 and not s["interrupted"]
    assert steps == sorted(steps) and steps[-1] == 600 and all(v[1] == 600 for v in seen)
    assert all(np.isfinite(v[2]) and v[2] > 0 for v in seen)
    # the default display (tqdm or a stderr line) runs too
    assert lv.train(x, tmp_path / "p2", steps=20, seed=1)["steps"] == 20


def test_ctrl_c_saves_a_checkpoint_and_returns(tmp_path):
    x, _ = blobs()
    # SIGINT while Rust works (the main thread sleeps outside the GIL): the handler's flag is
    # seen by the watcher, the run stops after its current step with a checkpoint.
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    s = lv.train(x, tmp_path / "i", steps=1_000_000, seed=1, progress=False)
    timer.join()
    assert s["interrupted"] and 0 < s["steps"] < 1_000_000, s
    assert (tmp_path / "i" / "checkpoint.safetensors").exists()
    r = lv.train(None, tmp_path / "i", resume=True, steps=s["steps"] + 10, progress=False)
    assert r["steps"] == s["steps"] + 10 and not r["interrupted"]

    # A KeyboardInterrupt raised inside the progress function does the same.
    def stop_at_200(step, total, loss):
        if step >= 200:
            raise KeyboardInterrupt

    s = lv.train(x, tmp_path / "k", steps=1_000_000, seed=1, progress=stop_at_200)
    assert s["interrupted"] and 200 <= s["steps"] < 1_000_000

    # Any other exception from it stops training (checkpointed) and is raised as itself.
    def broken(step, total, loss):
        raise RuntimeError("my progress display broke")

    with pytest.raises(RuntimeError, match="my progress display broke"):
        lv.train(x, tmp_path / "b", steps=1_000_000, seed=1, progress=broken)
    r = lv.train(None, tmp_path / "b", resume=True, steps=1, progress=False)
    assert r["steps"] >= 1


def test_minibatch_ot_and_reflow(tmp_path):
    x, _ = blobs()
    t = lv.train(x, tmp_path / "ot", objective="flow-matching", minibatch_ot=True, steps=300, seed=1, progress=False)
    cfg = (tmp_path / "ot" / "config.json").read_text()
    assert "minibatch-ot" in cfg or "minibatch_ot" in cfg.lower() or "MinibatchOt" in cfg, cfg[:400]
    s = lv.train(None, tmp_path / "rf", reflow=t, rows=500, reflow_steps=10, steps=100, seed=1, progress=False)
    assert s["steps"] == 100 and (tmp_path / "rf" / "train-noise.npy").exists()
    y, _ = lv.generate(s, n=100, sampler="ode", steps=1, seed=0)
    assert y.shape == (100, 2) and np.all(np.isfinite(y))
    with pytest.raises(ValueError, match="minibatch_ot and path apply"):
        lv.train(x, tmp_path / "no", objective="edm", minibatch_ot=True, steps=10, progress=False)
    with pytest.raises(ValueError, match="data=None"):
        lv.train(x, tmp_path / "no", reflow=t, steps=10, progress=False)
    with pytest.raises(ValueError, match="flow-matching student"):
        lv.train(None, tmp_path / "no", reflow=t, objective="edm", steps=10, progress=False)
    with pytest.raises(TypeError, match="valid ones"):
        lv.train(x, tmp_path / "no", minibatch=True)
    assert not (tmp_path / "no").exists()


def test_refused_starts_leave_nothing_behind(tmp_path):
    x, _ = blobs()
    x = np.concatenate([x, np.ones((len(x), 1))], axis=1)  # a constant column
    with pytest.raises(ValueError, match="keep_constant|constant"):
        lv.train(x, tmp_path / "c", steps=10, progress=False)
    assert not (tmp_path / "c").exists()
    s = lv.train(x, tmp_path / "c", keep_constant=True, steps=10, progress=False)
    assert s["steps"] == 10
    with pytest.raises(ValueError, match="already holds a training run"):
        lv.train(x, tmp_path / "c", keep_constant=True, steps=10, progress=False)
    with pytest.raises(ValueError, match="no such run directory"):
        lv.train(None, tmp_path / "none", resume=True, progress=False)
    assert not (tmp_path / "none").exists()


def test_image_data_by_name(tmp_path):
    s = lv.train("shapes", tmp_path / "img", image_size=16, rows=300, steps=20, seed=1, progress=False)
    cfg = (tmp_path / "img" / "config.json").read_text()
    assert '"image"' in cfg and '"channels": 3' in cfg
    g, _ = lv.generate(s, n=4, steps=3)
    assert g.shape == (4, 768)
    with pytest.raises(ValueError, match="16 or 32"):
        lv.train("shapes", tmp_path / "bad", image_size=20, steps=5, progress=False)
    with pytest.raises(ValueError, match="applies to image data"):
        lv.train("moons", tmp_path / "bad", image_size=16, steps=5, progress=False)


def test_a_unet_on_images_by_keyword(tmp_path):
    s = lv.train("digits", tmp_path / "u", model="unet", conditional=True, steps=2, batch=8, progress=False)
    cfg = json.loads((tmp_path / "u" / "config.json").read_text())
    assert cfg["net"]["unet"]["preset"] == "tiny" and cfg["net"]["unet"]["channels"] == 1
    g, _ = lv.generate(s, n=3, steps=2, cls="3")
    assert g.shape == (3, 64)
    with pytest.raises(ValueError, match="needs images"):
        lv.train("moons", tmp_path / "bad", model="unet", steps=2, progress=False)
    with pytest.raises(ValueError, match="sizes a U-Net"):
        lv.train("shapes", tmp_path / "bad", preset="small", steps=2, progress=False)
    with pytest.raises(ValueError, match="mirrors images"):
        lv.train("moons", tmp_path / "bad", flip=True, steps=2, progress=False)
    assert not (tmp_path / "bad").exists()


def write_png(path, rgb):
    """A plain 8-bit RGB PNG of the (h, w, 3) uint8 array `rgb`, without an imaging library."""
    import struct
    import zlib

    h, w, _ = rgb.shape

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + rgb[i].tobytes() for i in range(h))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def test_a_broken_image_file_stops_the_read_or_is_skipped(tmp_path, capfd):
    folder = tmp_path / "pngs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        write_png(folder / f"img{i:02}.png", rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8))
    (folder / "zz-broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(Exception, match="zz-broken.png") as e:
        lv.train(str(folder), tmp_path / "stop", image_size=8, steps=2, progress=False)
    assert "skip_bad_images" in str(e.value) or "--skip-bad-images" in str(e.value)
    assert not (tmp_path / "stop").exists()
    capfd.readouterr()
    lv.train(str(folder), tmp_path / "skip", image_size=8, steps=2, skip_bad_images=True, progress=False)
    warn = capfd.readouterr().err
    assert "skipped 1 image file" in warn and "zz-broken.png" in warn, warn
    cfg = json.loads((tmp_path / "skip" / "config.json").read_text())
    assert cfg["data"]["train_rows"] + cfg["data"]["heldout_rows"] == 12
    with pytest.raises(ValueError, match="applies to a folder of images"):
        lv.train("moons", tmp_path / "bad", skip_bad_images=True, steps=2, progress=False)
