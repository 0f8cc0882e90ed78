"""int8 and ONNX inference: an exported or quantized model scores like the float one, through
predict, file scoring, the command line and the server, and an ONNX folder scores without torch."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import IMDB, needs, printed_without, python_without

from sentiment import load_model, predict
from sentiment.cli.main import main
from sentiment.kinds.protocol import CapabilityError, require
from sentiment.kinds.registry import SHIPPED_MODEL

REVIEWS = SHIPPED_MODEL / "reviews"  # the default model's review member: what imdb-onnx exports

pytest.importorskip("onnxruntime")

# Float32 ONNX Runtime against float32 PyTorch: the same arithmetic in another summation order,
# ~1e-7 apart on real reviews (export.json records each export's); 1e-4 is the bound.
FLOAT_TOLERANCE = 1e-4
# int8 weights: each LSTM weight matrix rounded to 255 levels. On 300 test reviews the largest
# probability change was 0.014 (torch) and 0.011 (ONNX Runtime), and no label changed
# (BENCHMARKS.md); 0.05 and 1% of labels leave room for other reviews, not for a broken model.
INT8_TOLERANCE = 0.05
INT8_LABEL_CHANGES = 0.01


@pytest.fixture(scope="module")
def reviews() -> list[str]:
    if not (IMDB / "test.parquet").exists():
        pytest.skip("no IMDB test split")  # the tests using it carry needs(), which fails in CI
    table = pq.read_table(IMDB / "test.parquet", columns=["text"])
    return table.take(np.arange(0, 25_000, 125))["text"].to_pylist()  # 200 reviews, both labels


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    from sentiment.kinds.export import export_onnx

    root = tmp_path_factory.mktemp("onnx")
    return {quantize: (root / quantize, export_onnx(REVIEWS, root / quantize, quantize))
            for quantize in ("none", "int8")}


def test_an_export_names_a_shipped_source_by_its_place_in_the_package(tmp_path):
    """export.json's source: a shipped model by its path in the source tree (no machine's
    absolute path inside a shipped export), any other folder by its absolute path."""
    from sentiment.kinds.export import source_name
    from sentiment.kinds.registry import SHIPPED_MODELS

    assert source_name(SHIPPED_MODELS["imdb-fast"]) == "sentiment/models/imdb-fast"
    assert source_name(tmp_path / "mine") == str((tmp_path / "mine").resolve())


def _positive(results: list[dict]) -> np.ndarray:
    return np.array([r["score"] if r["label"] == "positive" else 1 - r["score"]
                     for r in results])


@needs(IMDB / "test.parquet")
def test_onnx_export_scores_real_reviews_like_pytorch(exported, reviews):
    folder, record = exported["none"]
    assert record["max_abs_difference"] <= FLOAT_TOLERANCE and record["opset"] >= 17
    assert json.loads((folder / "export.json").read_text())["quantize"] == "none"
    assert record["source"] == "sentiment/models/imdb/reviews"  # shipped: the same everywhere
    reference = _positive(predict(reviews, model=REVIEWS, mixed_precision=False))
    onnx = _positive(predict(reviews, model=folder))
    assert np.abs(onnx - reference).max() <= FLOAT_TOLERANCE
    assert ((onnx >= 0.5) == (reference >= 0.5)).all()
    model = load_model(folder)
    assert type(model).__name__ == "OnnxModel" and model.labels == ["negative", "positive"]
    one = load_model(folder, threads=1)  # a session of its own, cached per threads
    assert one is not model and load_model(folder, threads=1) is one
    # one single-threaded run per thread, each on its own batch: the same arithmetic
    assert one.threads == 1 and model.threads == len(os.sched_getaffinity(0))
    assert {m.session.get_session_options().intra_op_num_threads for m in (one, model)} == {1}
    two = load_model(folder, threads=2)
    np.testing.assert_array_equal(two.probabilities(two.encode(reviews), 8),
                                  one.probabilities(one.encode(reviews), 8))
    with pytest.raises(CapabilityError, match="ONNX export"):
        require(model, "explain")


@needs(IMDB / "test.parquet")
def test_int8_onnx_and_int8_pytorch_stay_close_to_float(exported, reviews):
    reference = _positive(predict(reviews, model=REVIEWS, mixed_precision=False))
    onnx_int8 = _positive(predict(reviews, model=exported["int8"][0]))
    torch_int8 = _positive(predict(reviews, model=REVIEWS, quantize="int8"))
    for scores in (onnx_int8, torch_int8):
        assert 0 < np.abs(scores - reference).max() <= INT8_TOLERANCE  # changed, but little
        assert ((scores >= 0.5) != (reference >= 0.5)).mean() <= INT8_LABEL_CHANGES
    # the int8 ONNX file is about a quarter of the float one
    assert ((exported["int8"][0] / "model.onnx").stat().st_size
            < 0.4 * (exported["none"][0] / "model.onnx").stat().st_size)


@needs(IMDB / "test.parquet")
def test_shipped_onnx_model_is_the_default_model_reading_the_end(reviews, tmp_path):
    """sentiment/models/imdb-onnx is the default model's int8 export reading a text's last 288
    tokens: the same vocabulary and n-gram part, the same config but for what it reads, and on
    real reviews the scores of the default model reading those tokens, within int8's tolerance.
    A default model shipped without exporting this again fails here."""
    from sentiment.kinds.checkpoint import export_model
    from sentiment.kinds.export import source_name
    from sentiment.kinds.registry import SHIPPED_MODELS

    shipped, default = SHIPPED_MODELS["imdb-onnx"], SHIPPED_MODELS["imdb"] / "reviews"
    wide = [f"wide/{f.name}" for f in (default / "wide").iterdir()]
    for name in ("vocab.json", "wide.json", *wide):
        assert (shipped / name).read_bytes() == (default / name).read_bytes(), name
    config = json.loads((shipped / "config.json").read_text())
    expected = json.loads((default / "config.json").read_text())
    assert (config["data"]["max_length"], config["data"]["keep"]) == (288, "end")
    expected["data"].update(max_length=288, keep="end")
    assert config == expected
    record = json.loads((shipped / "export.json").read_text())
    assert (record["quantize"], record["max_length"], record["keep"]) == ("int8", 288, "end")
    assert record["source"] == source_name(default) == "sentiment/models/imdb/reviews"
    # the default model reading the same tokens, in float32
    reading = export_model(default, tmp_path / "end288", "float32", max_length=288, keep="end")
    reference = _positive(predict(reviews, model=reading, mixed_precision=False))
    scores = _positive(predict(reviews, model="imdb-onnx"))
    assert np.abs(scores - reference).max() <= INT8_TOLERANCE
    assert ((scores >= 0.5) != (reference >= 0.5)).mean() <= INT8_LABEL_CHANGES
    long = [i for i, tokens in enumerate(load_model(default).tokens(reviews)) if len(tokens) > 288]
    assert len(long) >= 20  # the cut is exercised: these differ from the whole-review scores
    whole = _positive(predict([reviews[i] for i in long], model=default, mixed_precision=False))
    assert np.abs(whole - reference[long]).max() > INT8_TOLERANCE


def test_int8_model_explains_with_its_float_weights():
    model = load_model(REVIEWS, "cpu", quantize="int8")
    assert model.quantize == "int8" and "int8" in repr(model)
    explained = model.explain("A wonderful, moving film.")
    float_model = load_model(REVIEWS, "cpu")
    assert explained["label"] == float_model.explain("A wonderful, moving film.")["label"]
    with pytest.raises(ValueError, match="quantize"):
        predict("A fine film.", model=float_model, quantize="int8")
    with pytest.raises(ValueError, match="quantize must be one of"):
        load_model(SHIPPED_MODEL, quantize="int4")


def test_onnx_folder_is_a_model_for_the_command_line_and_files(exported, tmp_path, capsys):
    folder = exported["none"][0]
    source = tmp_path / "reviews.csv"
    source.write_text('id,text\n1,"A wonderful, moving film."\n2,"Dull and far too long."\n')
    assert main(["predict", "--model", str(folder), "--input", str(source), "--no-progress"]) == 0
    with open(tmp_path / "reviews.scored.csv", newline="") as scored_file:
        scored = list(csv.reader(scored_file))
    assert scored[0] == ["id", "text", "predicted_label", "predicted_score", "predicted_flag"]
    assert [row[2] for row in scored[1:]] == ["positive", "negative"]
    capsys.readouterr()
    assert main(["predict", "--model", str(folder), "A wonderful film."]) == 0
    assert json.loads(capsys.readouterr().out)["label"] == "positive"
    assert main(["predict", "--quantize", "int8", "A wonderful film."]) == 0
    assert json.loads(capsys.readouterr().out)["label"] == "positive"
    assert main(["predict", "--model", str(folder), "--quantize", "int8", "Fine."]) == 1
    assert "quantize it when exporting" in capsys.readouterr().err
    assert main(["predict", "--model", str(folder), "--device", "cuda", "Fine."]) == 1
    assert "scored on the CPU" in capsys.readouterr().err


def test_export_command_writes_onnx_and_refuses_what_it_cannot(tmp_path, capsys,
                                                               trained_model):
    assert main(["export", "--model", str(trained_model), "--output", str(tmp_path / "o")]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["format"] == "onnx" and written["max_abs_difference"] <= FLOAT_TOLERANCE
    assert {p.name for p in (tmp_path / "o").iterdir()} == {
        "model.onnx", "config.json", "vocab.json", "export.json", "model.json"}
    assert main(["export", "--model", str(trained_model), "--output", str(tmp_path / "h"),
                 "--format", "safetensors", "--dtype", "float16"]) == 0
    assert json.loads(capsys.readouterr().out)["dtype"] == "float16"
    assert predict("great wonderful", model=tmp_path / "h")["label"] == predict(
        "great wonderful", model=trained_model)["label"]
    assert main(["export", "--model", str(trained_model), "--output", str(trained_model)]) == 1
    assert "new folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", "--model", str(trained_model), "--output", str(tmp_path / "x"),
              "--format", "safetensors", "--quantize", "int8"])


def test_an_export_reads_the_end_of_a_long_text(trained_model, tmp_path, capsys):
    """export --max-length N --keep end: the exported folder (ONNX or safetensors) reads each
    text's last N tokens, so it scores a long text as its model scores those tokens alone,
    and its config records it; a text no longer than N scores as before."""
    source = load_model(trained_model)
    long_text = ("a wonderful , moving film with a brilliant cast . " * 6
                 + "but the ending was dull , boring and awful , i hated it .")
    tokens = source.tokens([long_text])[0]
    assert len(tokens) > 30
    tail = " ".join(tokens[-12:])  # the words the export reads, scored alone by the model
    for fmt in ("onnx", "safetensors"):
        folder = tmp_path / fmt
        assert main(["export", "--model", str(trained_model), "--output", str(folder),
                     "--format", fmt, "--dtype", "float32", "--max-length", "12",
                     "--keep", "end"]) == 0
        written = json.loads(capsys.readouterr().out)
        assert written["max_length"] == 12 and written["keep"] == "end"
        data = json.loads((folder / "config.json").read_text())["data"]
        assert (data["max_length"], data["keep"]) == (12, "end")
        model = load_model(folder)
        assert model.tokens([long_text])[0] == tokens[-12:]
        got = predict([long_text, "A wonderful film."], model=folder, all_scores=True,
                      mixed_precision=False)
        want = predict([tail, "A wonderful film."], model=trained_model, all_scores=True,
                       mixed_precision=False)
        np.testing.assert_allclose([r["scores"]["positive"] for r in got],
                                   [r["scores"]["positive"] for r in want], atol=1e-4)
    whole = predict(long_text, model=trained_model, all_scores=True, mixed_precision=False)
    assert abs(whole["scores"]["positive"] - got[0]["scores"]["positive"]) > 1e-3
    with pytest.raises(SystemExit):
        main(["export", "--model", str(trained_model), "--output", str(tmp_path / "bad"),
              "--max-length", "0"])
    assert "--max-length must be >= 1" in capsys.readouterr().err
    # --keep alone re-cuts at the model's own max_length (the test model's: 200) ...
    own = json.loads((trained_model / "config.json").read_text())["data"]["max_length"]
    assert own == 200
    assert main(["export", "--model", str(trained_model), "--output", str(tmp_path / "own"),
                 "--format", "safetensors", "--keep", "end"]) == 0
    data = json.loads((tmp_path / "own" / "config.json").read_text())["data"]
    assert (data["max_length"], data["keep"]) == (200, "end")
    # ... and on a model that reads whole texts it would be a silent no-op: refused, nothing
    # written
    whole = tmp_path / "whole"
    shutil.copytree(trained_model, whole)
    config = json.loads((whole / "config.json").read_text())
    config["data"]["max_length"] = None
    (whole / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    for fmt in ("onnx", "safetensors"):
        assert main(["export", "--model", str(whole), "--output", str(tmp_path / f"keep-{fmt}"),
                     "--format", fmt, "--keep", "end"]) == 1
        assert "changes nothing: this model reads whole texts" in capsys.readouterr().err
        assert not (tmp_path / f"keep-{fmt}").exists()


def test_server_scores_an_onnx_folder(exported):
    from fastapi.testclient import TestClient

    from sentiment.serve.app import create_app

    with TestClient(create_app(str(exported["none"][0]))) as client:
        answer = client.post("/predict", json={"text": ["A wonderful film.", "Awful."]})
        assert [r["label"] for r in answer.json()] == ["positive", "negative"]
        explained = client.post("/explain", json={"text": "A wonderful film."})
        assert explained.status_code == 422 and "ONNX" in explained.json()["detail"]


def test_onnx_folder_scores_without_torch(exported, tmp_path):
    """An install without torch: predict and the command line score an ONNX folder exactly as
    here, and a PyTorch folder is a clear error, not a traceback."""
    folder = exported["none"][0]
    python = python_without(tmp_path, "torch")
    code = ("import json, sys; from sentiment import predict; "
            f"print(json.dumps([predict('A wonderful, moving film.', model={str(folder)!r}), "
            "'torch' in sys.modules]))")
    scored, torch_loaded = printed_without(tmp_path, ("torch",), code)
    assert not torch_loaded
    expected = predict("A wonderful, moving film.", model=folder)
    assert scored["label"] == expected["label"]
    assert abs(scored["score"] - expected["score"]) < 1e-9
    cli = subprocess.run([*python, "-m", "sentiment", "predict", "--model", str(SHIPPED_MODEL),
                          "A fine film."], capture_output=True, text=True, timeout=120)
    assert cli.returncode == 1
    assert "torch is not installed" in cli.stderr and "Traceback" not in cli.stderr
    assert "model='imdb-onnx'" in cli.stderr
    # the shipped ONNX model scores by name, right after a torch-free install
    cli = subprocess.run([*python, "-m", "sentiment", "predict", "--model", "imdb-onnx",
                          "A dull, boring waste of two hours."], capture_output=True, text=True,
                         timeout=120)
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert json.loads(cli.stdout)["label"] == "negative"
    cli = subprocess.run([*python, "-m", "sentiment", "predict", "--model", str(folder),
                          "A fine film."], capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert json.loads(cli.stdout)["label"] == "positive"
    # no model named: without torch the default is the shipped model's ONNX export, so
    # predict works right after a torch-free install (and says which model it took)
    cli = subprocess.run([*python, "-m", "sentiment", "predict", "A dull, boring waste."],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "SENTIMENT_MODEL": ""})
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert json.loads(cli.stdout)["label"] == "negative" and "imdb-onnx" in cli.stderr
    code = ("import json, sys; from sentiment import load_model, predict; "
            "print(json.dumps([predict('A wonderful, moving film.'), load_model().path, "
            "'torch' in sys.modules]))")
    scored, path, torch_loaded = printed_without(tmp_path, ("torch",), code)
    assert Path(path).name == "imdb-onnx" and not torch_loaded
    assert scored == predict("A wonderful, moving film.", model="imdb-onnx")


def _requirement_closure(names: set[str]) -> set[str]:
    """``names`` and every distribution they require, transitively (no extras), as installed
    here; names normalized as PyPI does."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    closure, todo = set(), [canonicalize_name(name) for name in names]
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        closure.add(name)
        try:
            needed = requires(name) or []
        except PackageNotFoundError:
            continue
        for text in needed:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return closure


def test_the_documented_torch_free_install_scores_the_shipped_onnx_model(tmp_path):
    """docs/inference.md's torch-free install (one pip line) scores the shipped ONNX model: run
    with only the distributions that line installs (and what they require) importable. The
    wide-and-deep model's n-gram part needs safetensors, which that line once lacked: the first
    prediction failed on it while a test that hid torch alone passed."""
    import re
    from importlib.metadata import distributions, packages_distributions

    from packaging.utils import canonicalize_name

    docs = (Path(__file__).resolve().parents[1] / "docs" / "inference.md").read_text()
    line = re.search(r"^pip install ([^#\n]+?)\s+# what scoring needs", docs, re.M)
    assert line, "docs/inference.md lost its torch-free pip line"
    allowed = _requirement_closure(set(line.group(1).split()))
    assert "torch" not in allowed
    blocked = {top for top, owners in packages_distributions().items()
               if not any(canonicalize_name(owner) in allowed for owner in owners)}
    blocked |= {canonicalize_name(d.metadata["Name"]).replace("-", "_") for d in distributions()
                if canonicalize_name(d.metadata["Name"]) not in allowed}
    blocked.discard("sentiment")  # the checkout itself, which python_without puts on the path
    code = ("import json, sys; from sentiment import predict; "
            "texts = ['A wonderful, moving film.', 'A dull, boring waste of time.']; "
            "r = [[x['label'] for x in predict(texts, model=m)] "
            "for m in ('imdb-onnx', 'imdb-cascade')]; "
            "print(json.dumps([r, 'torch' in sys.modules]))")
    labels, torch_loaded = printed_without(tmp_path, tuple(sorted(blocked)), code)
    assert labels == [["positive", "negative"]] * 2 and not torch_loaded  # both ONNX only


def test_batch_scorer_on_threads_without_torch(exported, tmp_path):
    """The Ray Data callable with ``threads`` (as docs/inference.md sets it) in an install
    without torch: the ONNX session runs on those threads and scores as ``predict`` does."""
    folder = exported["none"][0]
    code = ("import json, sys, pandas as pd; from sentiment.inference.files import BatchScorer; "
            f"s = BatchScorer({str(folder)!r}, threads=1); "
            "out = s(pd.DataFrame({'id': [7, 8], 'text': ['A wonderful, moving film.', None]})); "
            "print(json.dumps([out['id'].tolist(), "
            "[x if isinstance(x, str) else None for x in out['predicted_label']], "
            "float(out['predicted_score'][0]), "
            "s.model.session.get_session_options().intra_op_num_threads, "
            "'torch' in sys.modules]))")
    ids, labels, score, threads, torch_loaded = printed_without(tmp_path, ("torch",), code)
    expected = predict("A wonderful, moving film.", model=folder)
    assert ids == [7, 8] and labels == [expected["label"], None]
    assert abs(score - expected["score"]) < 1e-9
    assert threads == 1 and not torch_loaded


def test_missing_onnxruntime_is_one_clear_line(exported, tmp_path):
    python = python_without(tmp_path, "onnxruntime")
    cli = subprocess.run([*python, "-m", "sentiment", "predict", "--model",
                          str(exported["none"][0]), "A fine film."],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 1
    assert 'pip install "sentiment-lstm[onnx]"' in cli.stderr and "Traceback" not in cli.stderr


@pytest.mark.parametrize("core", [
    {"layout": "separate"},  # the shipped encoder's: each direction its own stack
    {"layout": "joint"},
    {"bidirectional": False},
    {"bidirectional": False, "reverse": True},  # a backward stack fine-tuned alone
    {"rnn_type": "gru"},  # exported as it runs in PyTorch
])
def test_each_core_exports_with_onnx_own_recurrences_and_scores_like_pytorch(core, tmp_path):
    import onnx
    import torch

    from sentiment.kinds.checkpoint import save_pretrained
    from sentiment.kinds.export import TOLERANCE, export_onnx
    from sentiment.kinds.lstm import score_ids
    from sentiment.nn.heads import build_model
    from sentiment.text.vocab import Vocab
    from sentiment.train import recipe as pipeline

    torch.manual_seed(0)
    config = pipeline.make_config("tiny", vocab_size=40, embed_dim=6, hidden_dim=8,
                                  num_layers=2, **core)
    model = build_model("sentiment", config.model).eval()
    save_pretrained(model, tmp_path / "model", Vocab([f"t{i}" for i in range(40)]), config)
    record = export_onnx(tmp_path / "model", tmp_path / "onnx")
    assert record["max_abs_difference"] <= TOLERANCE
    rng = np.random.default_rng(1)  # one batch of very different lengths: padding must not leak
    ids = [rng.integers(2, 40, n).tolist() for n in (1, 3, 50, 7, 200, 2)]
    np.testing.assert_allclose(load_model(tmp_path / "onnx").probabilities(ids, 64),
                               score_ids(model, ids, 64, 0, mixed_precision=False),
                               atol=TOLERANCE)
    nodes = onnx.load(tmp_path / "onnx" / "model.onnx").graph.node
    kinds = [node.op_type for node in nodes]
    if core.get("rnn_type") == "gru":
        assert kinds.count("GRU") == 4
        return
    lstms = [node for node in nodes if node.op_type == "LSTM"]
    directions = 1 if core.get("bidirectional") is False else 2
    assert len(lstms) == 2 * directions and "GatherElements" not in kinds
    assert all(len(node.input) > 4 and node.input[4] for node in lstms)  # sequence_lens
    reverse = [node for node in lstms
               if any(a.name == "direction" and a.s == b"reverse" for a in node.attribute)]
    assert len(reverse) == (2 if directions == 2 else 2 * core.get("reverse", False))


def test_onnx_model_scores_in_its_own_token_budget(exported):
    from sentiment.data.lengths import least_cost_batches
    from sentiment.kinds.onnx import ONNX_MAX_TOKENS, OnnxModel

    model = OnnxModel(exported["int8"][0], threads=1)
    shapes, session = [], model.session

    class Recorder:  # the session, noting each batch's (rows, longest)
        def run(self, names, feeds):
            shapes.append(feeds["ids"].shape)
            return session.run(names, feeds)

    model.session = Recorder()
    words = "the film was long and slow but the ending was worth it".split()
    texts = [" ".join(words[i % len(words)] for i in range(n)) for n in range(150, 350, 5)]
    budgeted = model.score(texts)
    assert max(rows for rows, _ in shapes) > 1  # the budget, not one text a batch
    assert all(rows * steps <= ONNX_MAX_TOKENS for rows, steps in shapes)
    shapes.clear()
    unbudgeted = model.score(texts, max_tokens=None)  # cut by cost alone, 64 rows at most
    steps = list(range(150, 350, 5))  # each text's tokens
    expected = least_cost_batches(np.arange(40), steps, 64)
    assert shapes == [(len(batch), steps[batch[-1]]) for batch in expected]
    assert any(rows * longest > ONNX_MAX_TOKENS for rows, longest in shapes)
    assert [r["label"] for r in unbudgeted] == [r["label"] for r in budgeted]


def test_evaluate_reports_on_an_onnx_export_as_on_its_model(trained_model, synthetic_dir,
                                                            tmp_path):
    from sentiment.kinds.export import export_onnx
    from sentiment.kinds.ngram import LinearModel
    from sentiment.train.evaluation import evaluate_saved_model

    export_onnx(trained_model, tmp_path / "onnx")
    reports = {name: evaluate_saved_model(folder, split="valid", baseline=False,
                                          output=tmp_path / f"report-{name}")
               for name, folder in (("torch", trained_model), ("onnx", tmp_path / "onnx"))}
    assert reports["onnx"]["n"] == reports["torch"]["n"] > 0
    assert reports["onnx"]["accuracy"] == reports["torch"]["accuracy"] > 0.9
    assert (tmp_path / "report-onnx" / "report-valid.md").exists()  # the split names it
    # a model with no split of its own: one clear error, not an AttributeError
    rows = [json.loads(line) for line in (synthetic_dir / "train.jsonl").read_text().splitlines()]
    LinearModel.fit("nb_lr", [r["text"] for r in rows], [r["label"] for r in rows]).save(
        tmp_path / "linear")
    with pytest.raises(ValueError, match="benchmarks.paired"):
        evaluate_saved_model(tmp_path / "linear", split="valid")


def test_an_int8_export_prints_none_of_onnxruntimes_advice(trained_model, tmp_path, capsys,
                                                           caplog):
    """onnxruntime's quantizer logs 'Please consider to run pre-processing before quantization'
    on the root logger: advice a user of sentiment export cannot act on, kept off the terminal."""
    import logging

    with caplog.at_level(logging.INFO):  # its INFO notes too ("Quantization parameters ...")
        assert main(["export", "--model", str(trained_model), "--quantize", "int8",
                     "--output", str(tmp_path / "int8")]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["quantize"] == "int8"
    everything = captured.err + "\n".join(r.getMessage() for r in caplog.records)
    assert "pre-processing" not in everything
    assert "Quantization parameters" not in everything
