"""The real console script, end to end on synthetic data, and its handling of mistakes."""

import json

import numpy as np
import pytest
from PIL import Image

from segme.runtime import load_backend
from tests.console import assert_clean_error, needs_cli, run

pytestmark = needs_cli


def test_models_list_shows_all_families():
    out = run("models", "list").stdout
    for name in ("mobile_unet", "mnv3_unet", "deeplabv3plus", "prisma_net", "portrait_net",
                 "slim_net", "sinet", "mmnet", "modnet"):
        assert name in out
    assert "test_tiny" not in out


def test_models_info():
    out = run("models", "info", "sinet", "--size", 128).stdout
    assert "parameters" in out and "128x128" in out and "MACs" in out
    square = run("models", "info", "mnv3_unet", "--size", 224).stdout
    tall = run("models", "info", "mnv3_unet", "--size", "256x192").stdout
    assert "profiled at: 256x192" in tall and tall != square  # height x width, its own MACs


def test_train_eval_export(trained):
    run_dir = trained / "run"
    assert (run_dir / "best.pt").exists() and (run_dir / "last.pt").exists()
    assert (run_dir / "log.csv").read_text().startswith("epoch,")
    res = run("eval", "--model", run_dir / "best.pt", "--data", trained / "data/val",
              "--json", trained / "res.json")
    assert "fg_iou" in res.stdout and "synth" in res.stdout
    data = json.loads((trained / "res.json").read_text())
    assert data["all"]["images"] == 6 and 0 <= data["all"]["fg_iou"] <= 100
    run("export", "--model", run_dir / "best.pt", "-o", trained / "m.onnx")
    res2 = run("eval", "--model", trained / "m.onnx", "--data", trained / "data/val", "--json",
               trained / "res2.json", "--markdown")
    assert res2.stdout.lstrip().startswith("|")
    onnx_iou = json.loads((trained / "res2.json").read_text())["all"]["fg_iou"]
    assert abs(onnx_iou - data["all"]["fg_iou"]) < 0.05
    run("eval", "--model", trained / "m.onnx", "--data", trained / "data/val", "--json",
        trained / "guided.json", "--upsample", "guided")
    guided = json.loads((trained / "guided.json").read_text())["all"]
    assert guided["images"] == 6 and 0 <= guided["fg_iou"] <= 100
    run("export", "--model", run_dir / "best.pt", "-o", trained / "m.safetensors")
    run("eval", "--model", trained / "m.safetensors", "--data", trained / "data/val", "--json",
        trained / "res3.json")
    st_iou = json.loads((trained / "res3.json").read_text())["all"]["fg_iou"]
    assert st_iou == data["all"]["fg_iou"]


def test_eval_per_image_lists_the_worst_photos_first(trained):
    model, val = trained / "run/best.pt", trained / "data/val"
    out = run("eval", "--model", model, "--data", val, "--per-image", trained / "pi/all.csv",
              "--json", trained / "pi/all.json").stdout
    lines = (trained / "pi/all.csv").read_text().splitlines()
    header, rows = lines[0].split(","), [line.split(",") for line in lines[1:]]
    assert header[:3] == ["name", "source", "fg_iou"] and "boundary_iou" in header
    names = {p.stem for p in (val / "images").iterdir()}
    assert len(rows) == 6 and {r[0] for r in rows} == names and {r[1] for r in rows} == {"synth"}
    ious = [float(r[2]) for r in rows]
    assert ious == sorted(ious)
    assert f"worst fg-IoU: {rows[0][0]} {ious[0]:.2f}" in out
    # one photo: its own row and the set's score are the same number
    run("eval", "--model", model, "--data", val, "--limit", 1, "--per-image",
        trained / "pi/one.csv", "--json", trained / "pi/one.json")
    one = (trained / "pi/one.csv").read_text().splitlines()[1].split(",")
    assert float(one[2]) == pytest.approx(
        json.loads((trained / "pi/one.json").read_text())["all"]["fg_iou"], abs=1e-4)


def test_eval_limit_takes_pairs_from_every_source(tmp_path):
    from segme.segmenter import DEFAULT_MODEL

    data = tmp_path / "val"
    for sub in ("images", "masks"):
        (data / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"{s}_{i}" for s in "ab" for i in range(1, 6)]:
        Image.fromarray(rng.integers(0, 256, (24, 16, 3), np.uint8)).save(
            data / "images" / f"{name}.png")
        Image.fromarray(np.zeros((24, 16), np.uint8)).save(data / "masks" / f"{name}.png")
    run("eval", "--model", DEFAULT_MODEL, "--data", data, "--limit", 4, "--per-image",
        tmp_path / "pi.csv", "--json", tmp_path / "res.json")
    rows = (tmp_path / "pi.csv").read_text().splitlines()[1:]
    assert sorted(r.split(",")[0] for r in rows) == ["a_1", "a_2", "b_1", "b_2"]
    res = json.loads((tmp_path / "res.json").read_text())
    assert res["a"]["images"] == res["b"]["images"] == 2 and res["all"]["images"] == 4
    assert_clean_error(run("eval", "--model", DEFAULT_MODEL, "--data", data, "--limit", 0,
                           ok=False), "limit must be at least 1")


def test_eval_limit_spreads_round_robin_and_keeps_the_set_order():
    from segme.data.folders import Pair
    from segme.evaluate.run import spread

    pairs = [Pair(n, None, None) for n in
             ["a_1", "a_2", "a_3", "a_4", "a_5", "b_1", "c_1", "c_2", "c_3"]]
    names = [p.name for p in spread(pairs, 6)]  # b has one pair: a and c share the rest
    assert names == ["a_1", "a_2", "a_3", "b_1", "c_1", "c_2"]
    assert [p.name for p in spread(pairs, 3)] == ["a_1", "b_1", "c_1"]
    assert spread(pairs, None) == spread(pairs, 99) == pairs


def test_eval_per_image_needs_a_csv_name(trained, tmp_path):
    assert_clean_error(run("eval", "--model", trained / "run/best.pt", "--data",
                           trained / "data/val", "--per-image", tmp_path / "x.txt", ok=False),
                       ".csv")
    assert not (tmp_path / "x.txt").exists()


def test_pseudo_labels_from_a_teacher_train_a_student(trained, tmp_path):
    """The self-training recipe of src/segme/weights/README.md: a teacher's soft masks for unlabelled
    photos (`segme mask`, with test-time augmentation), beside the photos, as a second
    --data folder."""
    photos = trained / "data/val/images"
    run("mask", photos, "--model", trained / "run/best.pt", "--tta", "flip,32,64", "--out",
        tmp_path / "pl/masks")
    (tmp_path / "pl/images").symlink_to(photos.resolve(), target_is_directory=True)
    masks = sorted((tmp_path / "pl/masks").iterdir())
    assert len(masks) == 6 and len(np.unique(np.asarray(Image.open(masks[0])))) > 2  # soft
    out = run("train", "--model", "test_tiny", "--data", trained / "data/train", "--data",
              tmp_path / "pl", "--size", 32, "--epochs", 1, "--batch", 4, "--workers", 0,
              "--min-scale", 0.9, "--out", tmp_path / "student").stdout
    assert "training on 18 pairs from 2 folder(s)" in out


def test_multi_scale_training_validates_and_exports_at_size(trained, tmp_path):
    run("train", "--model", "test_tiny", "--data", trained / "data/train", "--val",
        trained / "data/val", "--size", 32, "--scales", 64, "--scales", 32, "--epochs", 1,
        "--batch", 4, "--workers", 0, "--out", tmp_path / "ms", "--no-progress")
    run("export", "--model", tmp_path / "ms/best.pt", "-o", tmp_path / "ms.onnx")
    assert load_backend(tmp_path / "ms.onnx").card.input_size == (32, 32)
    bad = run("train", "--model", "test_tiny", "--data", trained / "data/train", "--size", 32,
              "--scales", 42, "--epochs", 1, "--out", tmp_path / "bad", ok=False)
    assert_clean_error(bad, "--scales 42", "divisor")
    assert not (tmp_path / "bad/last.pt").exists()


def test_resume_continues(trained):
    run("train", "--model", "test_tiny", "--data", trained / "data/train", "--size", 32,
        "--epochs", 2, "--batch", 4, "--workers", 0, "--out", trained / "run", "--resume",
        "--no-progress")
    assert len((trained / "run/log.csv").read_text().splitlines()) == 3


@pytest.mark.parametrize(
    "args,words",
    [
        (["train", "--model", "test_tiny", "--data", "/no/such/dir"], ["not found", "/no/such/dir"]),
        (["models", "info", "no_such_net"], ["unknown model", "sinet"]),
        (["eval", "--model", "/no/model.onnx", "--data", "."], ["not found"]),
        (["eval", "--model", "model.xyz", "--data", "."], ["unknown model file type"]),
        (["train", "--model", "test_tiny", "--data", ".", "--min-scale", "0"],
         ["--min-scale must be in (0, 1]"]),
        (["train", "--model", "test_tiny", "--data", ".", "--scenes", "2"],
         ["--scenes must be a probability"]),
        (["mask", ".", "--tta", "flop"], ["--tta takes", "flop"]),
        (["mask", ".", "--tta", "flip,256"], ["only takes 224x224", ".safetensors"]),
        (["mask", ".", "--upsample", "nearest"], ["upsample must be guided or bilinear",
                                                  "'nearest'"]),
        (["eval", "--model", "m.onnx", "--data", ".", "--upsample", "cubic"],
         ["upsample must be guided or bilinear"]),
        (["bench", "--upsample", "cubic"], ["upsample must be guided or bilinear"]),
        (["train", "--model", "test_tiny", "--data", ".", "--pretrained"],
         ["test_tiny has no ImageNet weights", "efficientnet_unet"]),
        (["train", "--model", "test_tiny", "--data", ".", "--scenes", "0.5",
          "--scene-min-height", "0"], ["fraction of the frame"]),
        (["backgrounds", "out"], ["nothing to do", "--from"]),
    ],
)
def test_user_mistakes_give_one_line(args, words):
    assert_clean_error(run(*args, ok=False), *words)


def test_backgrounds_from_labelled_photos(trained, tmp_path):
    proc = run("backgrounds", tmp_path / "bg", "--from", trained / "data/train")
    written = sorted((tmp_path / "bg").glob("*.jpg"))
    assert written and f"{len(written)} backgrounds written" in proc.stdout
    assert {p.stem for p in written} <= {p.stem for p in (trained / "data/train/images").iterdir()}
    proc = run("backgrounds", tmp_path / "none", "--from", trained / "data/train",
               "--max-person", "0")
    assert "0 backgrounds written" in proc.stdout


def test_bad_model_files(tmp_path, trained):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    assert_clean_error(run("eval", "--model", junk, "--data", trained / "data/val", ok=False),
                       "not a valid ONNX model")
    ck = tmp_path / "junk.pt"
    ck.write_bytes(b"\x00" * 10)
    assert_clean_error(run("eval", "--model", ck, "--data", trained / "data/val", ok=False),
                       "not a segme checkpoint")


def test_bad_training_pair_is_named(tmp_path):
    run("synth", tmp_path / "d", "--train", 8, "--val", 2)
    (tmp_path / "d/train/masks/synth_0003.png").unlink()
    proc = run("train", "--model", "test_tiny", "--data", tmp_path / "d/train", "--size", 32,
               "--epochs", 1, "--batch", 4, "--workers", 0, "--out", tmp_path / "r", ok=False)
    assert_clean_error(proc, "synth_0003")


@pytest.fixture(scope="module")
def photos(trained, tmp_path_factory):
    """A folder of odd but valid photos, one corrupt file, and the tiny model as ONNX."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (48, 40, 3), dtype=np.uint8))
    rgb.save(root / "plain.jpg")
    rgb.convert("L").save(root / "gray.png")
    rgb.convert("P").save(root / "palette.png")
    rgb.convert("RGBA").save(root / "rgba.png")
    rgb.convert("CMYK").save(root / "cmyk.jpg")
    Image.fromarray(np.asarray(rgb.convert("L")).astype(np.uint16) * 257).save(root / "deep.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    rgb.save(root / "rotated.jpg", exif=exif.tobytes())
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    model = trained / "verbs.onnx"
    if not model.exists():
        run("export", "--model", trained / "run/best.pt", "-o", model)
    return root, model


def test_mask_folder_writes_every_good_image_and_reports_the_bad_one(photos, tmp_path):
    from PIL import Image

    root, model = photos
    proc = run("mask", root, "--out", tmp_path, "--model", model, ok=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "broken.jpg" in proc.stderr and "wrote 7 of 8" in proc.stdout
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["cmyk.png", "deep.png", "gray.png", "palette.png", "plain.png",
                     "rgba.png", "rotated.png"]
    for name in names:
        img = Image.open(tmp_path / name)
        assert img.mode == "L"
        assert img.size == ((48, 40) if name == "rotated.png" else (40, 48))


def test_cutout_replace_blur(photos, tmp_path):
    from PIL import Image

    root, model = photos
    run("cutout", root / "plain.jpg", "--out", tmp_path / "c", "--model", model)
    assert Image.open(tmp_path / "c/plain.png").mode == "RGBA"
    run("replace", str(root / "p*.png"), "--bg", "#00ff00", "--out", tmp_path / "r",
        "--model", model)
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == ["palette.png"]
    run("replace", root / "plain.jpg", "--bg", root / "rgba.png", "--fit", "fit", "--out",
        tmp_path / "r2", "--model", model, "--harmonize", "0.5")
    assert Image.open(tmp_path / "r2/plain.jpg").size == (40, 48)
    run("blur", root / "plain.jpg", "--out", tmp_path / "b", "--model", model, "--strength", 30)
    assert Image.open(tmp_path / "b/plain.jpg").mode == "RGB"
    for mode in ("guided", "bilinear"):  # the default for images is guided
        run("mask", root / "plain.jpg", "--out", tmp_path / mode, "--model", model,
            "--upsample", mode)
    run("mask", root / "plain.jpg", "--out", tmp_path / "default", "--model", model)
    masks = {m: np.asarray(Image.open(tmp_path / m / "plain.png"))
             for m in ("guided", "bilinear", "default")}
    assert np.array_equal(masks["default"], masks["guided"])
    assert not np.array_equal(masks["guided"], masks["bilinear"])


def test_refine_is_guided_upsampling_now(photos, tmp_path):
    """The deprecated --refine still works: it is --upsample guided (one guided filter, not
    two stacked), said in one line; with --upsample bilinear it is a contradiction."""
    root, model = photos
    for verb in ("cutout", "blur"):
        plain = run(verb, root / "plain.jpg", "--out", tmp_path / verb, "--model", model)
        refined = run(verb, root / "plain.jpg", "--out", tmp_path / f"{verb}-refine", "--model",
                      model, "--refine")
        assert refined.stderr.strip() == ("note: --refine is deprecated; it is --upsample guided "
                                          "(the default for images)"), refined.stderr
        assert "--refine" not in plain.stderr
        out = {"cutout": "plain.png", "blur": "plain.jpg"}[verb]
        assert (tmp_path / verb / out).read_bytes() == (tmp_path / f"{verb}-refine" / out
                                                         ).read_bytes()
    assert_clean_error(run("cutout", root / "plain.jpg", "--out", tmp_path / "x", "--model",
                           model, "--refine", "--upsample", "bilinear", ok=False),
                       "--refine is --upsample guided")
    assert "--refine" not in run("blur", "--help").stdout  # hidden: not offered any more


def test_verbs_refuse_bad_requests(photos, tmp_path):
    root, model = photos
    assert_clean_error(run("mask", tmp_path / "nothing", "--model", model, ok=False), "not found")
    assert_clean_error(run("replace", root / "plain.jpg", "--bg", "nocolour", "--model", model,
                           "--out", tmp_path, ok=False), "not a colour")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_clean_error(run("mask", root / "plain.jpg", "--model", model, "--out",
                           blocker / "sub", ok=False))
    # writing masks next to PNG inputs would overwrite them: refused, input intact
    before = (root / "gray.png").read_bytes()
    proc = run("mask", root / "gray.png", "--out", root, "--model", model, ok=False)
    assert proc.returncode == 1 and "overwrite an input" in proc.stderr
    assert (root / "gray.png").read_bytes() == before


def test_bench_prints_model_and_pipeline_latency(photos):
    _, model = photos
    out = run("bench", "--model", model, "--runs", 5, "--threads", 1, "--width", 64,
              "--height", 48).stdout
    assert "model ms" in out and "pipeline ms" in out and "test_tiny" in out
    assert "guided" in out and "bilinear" in out  # both upsamplings timed by default


def test_demo_writes_the_four_outputs(photos, tmp_path):
    pytest.importorskip("skimage", reason="scikit-image (the demo extra) is not installed")
    _, model = photos
    run("demo", "--model", model, "--out", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "astronaut-blurred.jpg", "astronaut-cutout.png", "astronaut-mask.png",
        "astronaut-replaced.jpg"]


def test_built_in_model_is_listed_and_used_by_default(photos, tmp_path):
    from PIL import Image

    listing = run("models", "list").stdout
    assert "built-in weights" in listing
    assert "mnv3-unet-portraits-224" in listing and "mnv3-unet-portraits-192" in listing
    root, _ = photos
    run("cutout", root / "plain.jpg", "--out", tmp_path)  # no --model: the built-in one
    assert Image.open(tmp_path / "plain.png").size == (40, 48)
    for name in ("mnv3-unet-portraits-224", "mnv3-unet-portraits-192"):
        run("mask", root / "plain.jpg", "--model", name, "--out", tmp_path / name)
        mask = Image.open(tmp_path / name / "plain.png")  # a built-in model by its name
        assert mask.mode == "L" and mask.size == (40, 48)


def test_decompression_bomb_and_empty_files_are_refused(photos, tmp_path):
    from PIL import Image

    _, model = photos
    Image.new("1", (16000, 12000)).save(tmp_path / "bomb.png")  # 192 Mpx, a 23 kB file
    (tmp_path / "empty.jpg").write_bytes(b"")
    proc = run("mask", tmp_path, "--out", tmp_path / "out", "--model", model, ok=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "bomb.png" in proc.stderr and "exceeds limit" in proc.stderr
    assert "empty.jpg: it is empty (0 bytes)" in proc.stderr
    assert list((tmp_path / "out").iterdir()) == []  # nothing half-written
