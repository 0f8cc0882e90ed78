"""Scoring past one machine: :class:`sentiment.inference.files.BatchScorer` as a Ray Data
``map_batches`` callable on a local Ray instance, each score checked against ``predict``'s."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import IMDB, needs

from sentiment import predict
from sentiment.inference.files import BatchScorer
from sentiment.kinds.registry import SHIPPED_MODEL

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    yield ray
    ray.shutdown()


@needs(IMDB / "test.parquet")
def test_ray_data_scores_real_reviews_as_predict_does(local_ray, tmp_path):
    table = pq.read_table(IMDB / "test.parquet").take(np.arange(0, 25_000, 80))  # 313 reviews
    table = table.append_column("row", pa.array(range(table.num_rows)))
    source = tmp_path / "in"
    source.mkdir()
    pq.write_table(table, source / "part-0.parquet")
    dataset = ray.data.read_parquet(str(source))
    scored = dataset.map_batches(
        BatchScorer, fn_constructor_kwargs={"model": str(SHIPPED_MODEL),
                                            "mixed_precision": False},
        batch_format="pyarrow", batch_size=100,
        compute=ray.data.ActorPoolStrategy(size=1), num_cpus=1)
    scored.write_parquet(str(tmp_path / "out"))
    result = pq.read_table(tmp_path / "out").to_pandas().sort_values("row")
    assert list(result.columns) == [*table.column_names, "predicted_label", "predicted_score",
                                    "predicted_flag"]
    assert len(result) == table.num_rows
    expected = predict(table["text"].to_pylist(), model=SHIPPED_MODEL, mixed_precision=False)
    assert list(result["predicted_label"]) == [r["label"] for r in expected]
    np.testing.assert_allclose(result["predicted_score"], [r["score"] for r in expected],
                               atol=1e-5)  # float32 both ways; batches differ, padding does not
    assert list(result["label"]) == table["label"].to_pylist()  # input columns kept


def test_batch_scorer_keeps_the_batch_format_and_rows_without_text(trained_model):
    scorer = BatchScorer(str(trained_model), text_column="review")
    frame = pd.DataFrame({"review": ["great wonderful", None, "awful boring"], "id": [7, 8, 9]},
                         index=[10, 11, 12])
    scored = scorer(frame)
    assert list(scored.index) == [10, 11, 12] and list(scored["id"]) == [7, 8, 9]
    assert scored["predicted_label"].tolist()[0] == "positive"
    assert scored["predicted_label"].isna().tolist() == [False, True, False]
    arrow = scorer(pa.Table.from_pandas(frame, preserve_index=False))
    assert isinstance(arrow, pa.Table) and arrow.column("predicted_label")[2].as_py() == "negative"
    with pytest.raises(ValueError, match="no column 'text'"):
        BatchScorer(str(trained_model))(frame)
